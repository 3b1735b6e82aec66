// The trade history's pure parts (TradesView): the filters as they live in the URL query,
// what the API is asked, the pushed trades merged over the fetched ones, and each cell's
// text. A trade is the API's TradeOut (apps/api/trades/schemas.py): money as strings,
// times as epoch seconds, unknown as null; a settled trade keeps state "placed".

export const OUTCOME_FILTERS = ['won', 'lost', 'open']
export const HISTORY_LIMIT = 200

const DATE = /^\d{4}-\d{2}-\d{2}$/

/** The history's filters from the route's query; unknown or malformed values are dropped. */
export function filtersFromQuery(query = {}) {
  const one = (v) => (Array.isArray(v) ? v[0] : v) ?? ''
  const channel = String(one(query.channel))
  const outcome = String(one(query.outcome))
  const from = String(one(query.from))
  const to = String(one(query.to))
  return {
    channel,
    outcome: OUTCOME_FILTERS.includes(outcome) ? outcome : '',
    from: DATE.test(from) ? from : '',
    to: DATE.test(to) ? to : '',
  }
}

/** The route query for the filters: only the ones set, so a bare /trades means "all". */
export function queryFromFilters(filters) {
  const query = {}
  for (const name of ['channel', 'outcome', 'from', 'to']) if (filters[name]) query[name] = filters[name]
  return query
}

/** The API's query parameters (GET /api/v1/orders and /orders.csv) for the filters. */
export function apiParams(filters, limit = HISTORY_LIMIT) {
  return {
    channel_id: filters.channel || undefined,
    outcome: filters.outcome || undefined,
    // Whole days, as the API reads an ISO date: since its midnight, until the next (UTC).
    since: filters.from || undefined,
    until: filters.to || undefined,
    limit,
  }
}

const dayStart = (date) => Date.parse(`${date}T00:00:00Z`) / 1000

/** The instant a trade is dated by: its state's, else its settlement's (the API's rule). */
export const tradeTime = (t) => t.at ?? t.settled_at ?? null

/** Whether a trade passes the filters, by the API's rules (for trades pushed meanwhile). */
export function matchesFilters(t, filters) {
  if (filters.channel && t.channel_id !== filters.channel) return false
  if (filters.outcome === 'open' && (t.state !== 'placed' || t.outcome)) return false
  if ((filters.outcome === 'won' || filters.outcome === 'lost') && t.outcome !== filters.outcome) return false
  if (filters.from || filters.to) {
    const at = tradeTime(t)
    if (at == null) return false
    if (filters.from && at < dayStart(filters.from)) return false
    if (filters.to && at >= dayStart(filters.to) + 86400) return false
  }
  return true
}

/** `base` with every field of `newer` that is known (not null, not undefined, not ''). */
export function mergeTrade(base, newer) {
  if (!base) return { ...newer }
  const out = { ...base }
  for (const [name, value] of Object.entries(newer)) {
    if (value !== null && value !== undefined && value !== '') out[name] = value
  }
  return out
}

/**
 * The fetched history (in the API's order, newest first) with the trades pushed this
 * session merged over it by order id (pushed known fields win); trades only pushed come
 * first, newest first (order ids sort by their signal's time). Kept to the filters.
 */
export function mergeTrades(fetched = [], pushed = [], filters = {}) {
  const byId = new Map(pushed.map((t) => [t.order_id, t]))
  const merged = fetched.map((t) => (byId.has(t.order_id) ? mergeTrade(t, byId.get(t.order_id)) : t))
  const known = new Set(fetched.map((t) => t.order_id))
  const fresh = pushed
    .filter((t) => !known.has(t.order_id))
    .sort((a, b) => (a.order_id < b.order_id ? 1 : a.order_id > b.order_id ? -1 : 0))
  return [...fresh, ...merged].filter((t) => matchesFilters(t, filters))
}

/** won | lost | open (placed, not settled yet) | '' (never placed). */
export function outcomeOf(t) {
  if (t.outcome) return t.outcome
  return t.state === 'placed' ? 'open' : ''
}

/** "60 s", "5 min", "1 h 30 min": a contract's length. */
export function expiryText(seconds) {
  if (seconds === null || seconds === undefined) return '—'
  const s = Number(seconds)
  if (s < 60 || s % 60) return `${s} s`
  if (s < 3600) return `${s / 60} min`
  const h = Math.floor(s / 3600)
  const m = (s % 3600) / 60
  return m ? `${h} h ${m} min` : `${h} h`
}

/** A spot as the broker quoted it (its own digits), or — when unknown. */
export const spotText = (value) => (value === null || value === undefined || value === '' ? '—' : String(value))

/** "1.1000 → 1.1012", "1.1000 → …" while open, or — when the broker said neither. */
export function spotsText(t) {
  if (t.entry_spot == null && t.exit_spot == null) return '—'
  const exit = t.exit_spot != null ? spotText(t.exit_spot) : outcomeOf(t) === 'open' ? '…' : '—'
  return `${spotText(t.entry_spot)} → ${exit}`
}

/** The copy delay (signal accepted → placed): "85 ms", "1.2 s". */
export function delayText(ms) {
  if (ms === null || ms === undefined) return '—'
  const n = Number(ms)
  return n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(1)} s`
}
