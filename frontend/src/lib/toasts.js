// Trades pushed over the live socket → the toasts that announce them. Pure, so the store
// stays thin and the rules (what is news, how a burst collapses) are unit-tested.
//
// A trade is news when its phase changes: pending → placed / rejected / expired / failed /
// unknown, placed → won / lost. A redelivered push of a phase already seen says nothing.
// Toasts of one kind arriving within BURST_MS of each other collapse into one summary
// ("12 trades placed"), so a busy channel shows one line per kind, not a flood.

import { brokerName } from './brokers'
import { money } from './format'

/** Toasts on screen at once; older ones give way. */
export const MAX_TOASTS = 4
/** A toast of the same kind this recent absorbs the next one into a summary. */
export const BURST_MS = 2000
/** How long a toast stays after its last change: refusals longer, they need reading. */
export const DISMISS_MS = { placed: 6000, won: 8000, lost: 8000, refused: 12000 }

const REFUSED = new Set(['rejected', 'expired', 'failed', 'unknown'])

/** The trade after a push: the pushed non-null fields over what was known. */
export function mergeTrade(known, pushed) {
  if (!known) return { ...pushed }
  const merged = { ...known }
  for (const [key, value] of Object.entries(pushed)) {
    if (value !== null && value !== undefined) merged[key] = value
  }
  return merged
}

/** placed | won | lost | rejected | expired | failed | unknown | pending */
export function phase(trade) {
  return trade?.outcome || trade?.state || 'pending'
}

function terms(trade) {
  return [trade.asset, trade.direction, money(trade.stake)].filter((part) => part && part !== '—').join(' ')
}

function signed(value, currency) {
  const n = Number(value)
  if (!Number.isFinite(n)) return money(value, currency)
  return `${n > 0 ? '+' : ''}${money(value, currency)}`
}

/**
 * The toast a change from `known` to `merged` deserves, or null when nothing is new:
 * {kind: placed|refused|won|lost, tone, text, profit?, at}.
 */
export function toastFor(known, merged) {
  const now = phase(merged)
  if (now === 'pending' || (known && phase(known) === now)) return null
  const broker = brokerName(merged.broker_kind) || 'the broker'
  if (now === 'placed') {
    return { kind: 'placed', tone: 'primary', text: `${terms(merged)} placed at ${broker}`, at: merged.at }
  }
  if (now === 'won' || now === 'lost') {
    const head = [merged.asset, merged.direction].filter(Boolean).join(' ')
    return {
      kind: now,
      tone: now === 'won' ? 'success' : 'danger',
      text: `${head} ${now} ${signed(merged.profit, merged.currency)}`.trim(),
      profit: Number(merged.profit) || 0,
      at: merged.settled_at,
    }
  }
  if (REFUSED.has(now)) {
    const why = merged.reason ? `: ${merged.reason}` : ''
    return { kind: 'refused', tone: 'warning', text: `${terms(merged)} ${now} at ${broker}${why}`, at: merged.at }
  }
  return null
}

function summary(kind, count, profit) {
  const trades = `${count} trades`
  if (kind === 'placed') return `${trades} placed`
  if (kind === 'refused') return `${trades} not placed`
  return `${trades} ${kind} ${signed(profit.toFixed(2))}`
}

/**
 * The toasts on screen after `incoming` arrives at `now` (ms): merged into a recent one of
 * its kind as a summary, else added; at most `max`, the oldest giving way. Returns
 * {toasts, id} — the id of the toast that shows it (to re-arm its dismissal).
 */
export function addToast(toasts, incoming, now, { max = MAX_TOASTS, burstMs = BURST_MS, nextId } = {}) {
  const recent = toasts.find((t) => t.kind === incoming.kind && now - t.updatedAt <= burstMs)
  if (recent) {
    const count = recent.count + 1
    const profit = (recent.profit ?? 0) + (incoming.profit ?? 0)
    const updated = { ...recent, count, profit, text: summary(incoming.kind, count, profit), updatedAt: now }
    return { toasts: toasts.map((t) => (t.id === recent.id ? updated : t)), id: recent.id }
  }
  const id = nextId ?? `t${now}-${toasts.length}`
  const added = { ...incoming, id, count: 1, profit: incoming.profit ?? 0, createdAt: now, updatedAt: now }
  return { toasts: [...toasts, added].slice(-max), id }
}
