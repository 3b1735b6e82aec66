import { fileURLToPath, URL } from 'node:url'
import { defineConfig, loadEnv } from 'vite'
import vue from '@vitejs/plugin-vue'

// The Python API serves the built site itself (http://127.0.0.1:8000 in the embedded
// stack), so by default the app talks to its own origin: VITE_API_BASE = ''.
// Set VITE_API_BASE at build time (env var or .env.production.local) to point the
// bundle at another origin, e.g. VITE_API_BASE=https://api.example.com npm run build;
// Vite inlines it as import.meta.env.VITE_API_BASE (read in src/api/client.js).
//
// In `npm run dev` Vite proxies the API paths to the local API, so the same-origin
// default keeps working on http://localhost:5173. Override the target with
// API_PROXY_TARGET if the API listens elsewhere.
export default defineConfig(({ mode }) => {
  const env = loadEnv(mode, process.cwd(), '')
  const proxyTarget = env.API_PROXY_TARGET || 'http://127.0.0.1:8000'

  return {
    base: '/',
    plugins: [vue()],
    resolve: {
      alias: {
        '@': fileURLToPath(new URL('./src', import.meta.url)),
      },
    },
    server: {
      port: 5173,
      strictPort: true,
      proxy: {
        '/api': { target: proxyTarget, changeOrigin: true, ws: true },
        '/health': { target: proxyTarget, changeOrigin: true },
        '/ready': { target: proxyTarget, changeOrigin: true },
      },
    },
    preview: {
      port: 4173,
      proxy: {
        '/api': { target: proxyTarget, changeOrigin: true, ws: true },
        '/health': { target: proxyTarget, changeOrigin: true },
        '/ready': { target: proxyTarget, changeOrigin: true },
      },
    },
    build: {
      outDir: 'dist',
      emptyOutDir: true,
      sourcemap: false,
    },
    test: {
      environment: 'jsdom',
      include: ['src/**/*.spec.js'],
      setupFiles: ['src/test/setup.js'],
      restoreMocks: true,
      unstubGlobals: true,
    },
  }
})
