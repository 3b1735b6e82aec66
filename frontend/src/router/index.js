import { createRouter, createWebHistory } from 'vue-router'
import HomeView from '@/views/HomeView.vue'

const APP_NAME = 'Cloud Trade Copier'

// History mode: the API must answer unknown non-API paths with index.html
// (SPA fallback) so deep links like /channels/123 survive a reload.
export const routes = [
  { path: '/', name: 'home', component: HomeView, meta: { title: 'Home' } },
  {
    path: '/login',
    name: 'login',
    component: () => import('@/views/LoginView.vue'),
    meta: { title: 'Sign in' },
  },
  {
    path: '/channels/:id',
    name: 'channel',
    component: () => import('@/views/ChannelView.vue'),
    props: true,
    meta: { title: 'Channel' },
  },
  {
    path: '/:pathMatch(.*)*',
    name: 'not-found',
    component: () => import('@/views/NotFoundView.vue'),
    meta: { title: 'Page not found' },
  },
]

export function createAppRouter(history = createWebHistory(import.meta.env.BASE_URL)) {
  const router = createRouter({
    history,
    routes,
    scrollBehavior(to, from, saved) {
      return saved || { top: 0 }
    },
  })
  router.afterEach((to) => {
    if (typeof document !== 'undefined') {
      document.title = to.meta?.title ? `${to.meta.title} · ${APP_NAME}` : APP_NAME
    }
  })
  return router
}

export default createAppRouter
