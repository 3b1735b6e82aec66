import { defineStore } from 'pinia'
import { ApiError } from '@/api/client'
import { readiness } from '@/api/health'

const OK_STATUSES = new Set(['ok', 'ready', 'healthy', 'pass', 'up'])

function isOkValue(value) {
  if (value === true) return true
  if (typeof value === 'string') return OK_STATUSES.has(value.toLowerCase())
  if (value && typeof value === 'object') {
    if ('ok' in value) return value.ok === true
    if ('status' in value) return isOkValue(value.status)
  }
  return false
}

/** Turn whatever shape /ready reports its checks in (object or list) into [{name, ok, detail}]. */
export function normalizeChecks(checks) {
  if (!checks) return []
  const entries = Array.isArray(checks)
    ? checks.map((c, i) => [c?.name ?? `check ${i + 1}`, c])
    : Object.entries(checks)
  return entries.map(([name, value]) => {
    let detail = null
    if (typeof value === 'string') detail = value
    else if (value && typeof value === 'object') {
      detail = value.detail ?? value.message ?? value.error ?? value.status ?? null
      if (typeof value.latency_ms === 'number') detail = `${detail ?? ''} ${value.latency_ms} ms`.trim()
    }
    return { name, ok: isOkValue(value), detail: detail == null ? null : String(detail) }
  })
}

/**
 * Readiness of the backend, from GET /ready (api/health.js).
 * status: 'unknown' before the first call, then the API's status ('ok' when it sends none)
 * or 'error' when the request fails; checks: the API's per-dependency checks;
 * error: the failure message (null when ok); loading: a request is in flight.
 */
export const useHealthStore = defineStore('health', {
  state: () => ({
    status: 'unknown',
    checks: {},
    error: null,
    loading: false,
    checkedAt: null,
  }),
  getters: {
    isOk: (state) => !state.error && isOkValue(state.status),
    checkList: (state) => normalizeChecks(state.checks),
  },
  actions: {
    async fetchReady() {
      this.loading = true
      this.error = null
      try {
        const data = await readiness()
        this.status = (data && typeof data === 'object' && data.status) || 'ok'
        this.checks = (data && typeof data === 'object' && data.checks) || {}
      } catch (err) {
        // A 503 from /ready may still carry per-check results worth showing.
        const body = err instanceof ApiError ? err.body : null
        this.status = 'error'
        this.checks = (body && typeof body === 'object' && body.checks) || {}
        this.error = err?.message || String(err)
      } finally {
        this.loading = false
        this.checkedAt = new Date()
      }
    },
  },
})
