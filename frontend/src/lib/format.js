// Small pure helpers shared by views; kept free of Vue so they are trivially unit-tested.

const BROKER_ANSWERS = new Set(['broker_rejected', 'broker_unavailable'])

/** Pull per-field messages out of an ApiError so forms can show them beside the fields. */
export function fieldErrors(err, fields = []) {
  const out = {}
  if (!err) return out
  const details = err.details
  const list = Array.isArray(details) ? details : details && typeof details === 'object' ? [details] : []
  for (const d of list) {
    const key = d?.key ?? d?.field ?? null
    if (key && typeof d.message === 'string') {
      const path = String(key).replace(/^\$\./, '')
      out[path] = d.message
      // A nested field ("plan.price", "credentials.token") also shows beside its own input.
      const last = path.replace(/\[\d+\]$/, '').split('.').pop()
      if (last && !(last in out)) out[last] = d.message
    }
  }
  const message = String(err.message || '')
  // msgspec: "Expected `str` of length >= 8 - at `$.password`"
  const at = message.match(/at `\$\.(?:[A-Za-z_]+\.)*([A-Za-z_]+)`/)
  if (at && !out[at[1]]) out[at[1]] = message.replace(/\s*-\s*at `\$[^`]*`/, '')
  // Field-named ValueErrors ("stake must not exceed max_stake") or plain words ("e-mail").
  // A broker's answer ("The token is invalid.") is about the account, not a field's form.
  if (!Object.keys(out).length && !BROKER_ANSWERS.has(err.code)) {
    const lower = message.toLowerCase()
    const hit = fields.find((f) => lower.startsWith(f.toLowerCase()))
      ?? fields.find((f) => lower.includes(f.toLowerCase().replace('_', ' ')))
      ?? (/e-?mail/.test(lower) && fields.includes('email') ? 'email' : null)
      ?? (/password/.test(lower) && fields.includes('password') ? 'password' : null)
    if (hit) out[hit] = message
  }
  return out
}

export function money(value, currency = '') {
  if (value === null || value === undefined || value === '') return '—'
  const n = Number(value)
  if (!Number.isFinite(n)) return String(value)
  const s = `${n < 0 ? '−' : ''}${Math.abs(n).toFixed(2)}`
  return currency ? `${s} ${currency}` : s
}

export function percent(value) {
  if (value === null || value === undefined) return '—'
  return `${(Number(value) * 100).toFixed(1)}%`
}

/** Seconds-since-epoch (the API's floats) or ISO strings → a short local date-time. */
export function when(value) {
  if (value === null || value === undefined) return '—'
  const d = typeof value === 'number' ? new Date(value * 1000) : new Date(value)
  if (Number.isNaN(d.getTime())) return '—'
  return d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' })
}

export function duration(seconds) {
  if (seconds < 60) return `${seconds} s`
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h`
  return `${Math.round(seconds / 86400)} d`
}

/** Fan-out counts → ordered bar segments with percentages of the total (never above 100 %). */
export const OUTCOMES = [
  { key: 'placed', label: 'placed', cls: 'bg-success' },
  { key: 'rejected', label: 'rejected', cls: 'bg-warning' },
  { key: 'expired', label: 'expired', cls: 'bg-secondary' },
  { key: 'failed', label: 'failed', cls: 'bg-danger' },
  { key: 'unknown', label: 'unknown', cls: 'bg-info' },
]

export function progressSegments(counts) {
  const c = counts || {}
  const settled = OUTCOMES.reduce((sum, o) => sum + (Number(c[o.key]) || 0), 0)
  const total = c.total == null ? null : Number(c.total)
  const denominator = Math.max(total ?? 0, settled, 1)
  return {
    total,
    settled,
    complete: total !== null && settled >= total,
    segments: OUTCOMES.map((o) => ({
      ...o,
      count: Number(c[o.key]) || 0,
      pct: ((Number(c[o.key]) || 0) / denominator) * 100,
    })),
  }
}

/** Running sum of `value(item)` over items sorted by `time(item)` → [{x, y}] for charts. */
export function cumulative(items, time, value) {
  const sorted = [...items].sort((a, b) => time(a) - time(b))
  let sum = 0
  return sorted.map((item) => {
    sum += Number(value(item)) || 0
    return { x: time(item), y: Math.round(sum * 100) / 100 }
  })
}
