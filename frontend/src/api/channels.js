// Channels, their delegates and subscribers (apps/api/channels/routes.py). Reading a
// channel is public; everything else is signed.
import { api, withQuery } from './client'
import { segment, V1 } from './paths'

const channel = (id) => `${V1}/channels/${segment(id)}`

/**
 * One page of the public channels, sorted and filtered on the server; resolves with
 * {items, page, page_size, total}. Params: sort, order, asset, max_price, min_win_rate,
 * min_record_days, page, page_size (empty ones are left out).
 */
export const listChannels = (params = {}) =>
  api.get(withQuery(`${V1}/channels`, Object.fromEntries(Object.entries(params).filter(([, v]) => v !== ''))))

/** A channel's public track record: {windows, equity, subscribers, record_days, …}. */
export const getTrackRecord = (id) => api.get(`${channel(id)}/track-record`)

/** One channel (public); rejects with status 404 when it does not exist. */
export const getChannel = (id) => api.get(channel(id))

/** Open a channel: {name, description, price, currency, period_days}. */
export const createChannel = (body) => api.post(`${V1}/channels`, body, { auth: true })

/** Change a channel's name, description or plan (owner only). */
export const updateChannel = (id, body) => api.patch(channel(id), body, { auth: true })

/** Who may send signals for the channel (owner only); resolves with {delegates}. */
export const listDelegates = (channelId) => api.get(`${channel(channelId)}/delegates`, { auth: true })

/** Let a user send signals for the channel; resolves with {delegates}. */
export const addDelegate = (channelId, email) =>
  api.post(`${channel(channelId)}/delegates`, { email }, { auth: true })

/** Take a delegate's right to signal away. */
export const removeDelegate = (channelId, userId) =>
  api.delete(`${channel(channelId)}/delegates/${segment(userId)}`, { auth: true })

/** Who copies the channel (owner only). */
export const listSubscribers = (channelId) => api.get(`${channel(channelId)}/subscribers`, { auth: true })
