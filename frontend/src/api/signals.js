// A channel's signal history (apps/api/signals/routes.py); signals are sent over the
// WebSocket (stores/live.js), not here.
import { api, withQuery } from './client'
import { segment, V1 } from './paths'

/** The channel's signals, newest first, with their counts (owner and delegates). */
export const listSignals = (channelId, { limit } = {}) =>
  api.get(withQuery(`${V1}/channels/${segment(channelId)}/signals`, { limit }), { auth: true })

/** The channel's signal history as the caller may see it: past signals for everyone,
 * current ones too for its owner, delegates and subscribers (signed when signed in). */
export const listChannelSignals = (channelId, { limit, signedIn = false } = {}) =>
  api.get(withQuery(`${V1}/channels/${segment(channelId)}/signals`, { limit }), { auth: signedIn })
