// Notifications' labels, the grid's cycle of states, and the unread count the navbar shows.
import { ref } from 'vue'

export const KIND_LABELS = {
  placed: 'Trade placed',
  rejected: 'Trade rejected',
  won: 'Trade won',
  lost: 'Trade lost',
  paused: 'Subscription paused',
  ending: 'Subscription ending',
}

export const CHANNEL_LABELS = { in_app: 'In-app', email: 'E-mail', telegram: 'Telegram' }

export const DIGESTS = [
  { value: 'off', label: 'Each as it happens' },
  { value: 'hourly', label: 'Hourly digest' },
  { value: 'daily', label: 'Daily digest' },
]

/** A grid cell's next override: follow the default → on → off → follow the default. */
export function nextOverride(current) {
  if (current === undefined || current === null) return true
  return current === true ? false : null
}

/** `overrides` with one cell set (null removes it), without touching the original. */
export function withOverride(overrides, kind, channel, value) {
  const next = Object.fromEntries(Object.entries(overrides || {}).map(([k, v]) => [k, { ...v }]))
  const row = { ...(next[kind] || {}) }
  if (value === null || value === undefined) delete row[channel]
  else row[channel] = value
  if (Object.keys(row).length) next[kind] = row
  else delete next[kind]
  return next
}

/** Unread in-app notifications, shared by the navbar badge and the notifications page. */
export const unread = ref(0)
