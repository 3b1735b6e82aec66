// The caller's subscriptions (apps/api/subscriptions/routes.py); every call is signed.
import { api } from './client'
import { segment, V1 } from './paths'

const subscription = (id) => `${V1}/subscriptions/${segment(id)}`

/** Copy a channel: {broker_account_id, stake_mode, stake, max_stake, …}. */
export const subscribe = (channelId, body) =>
  api.post(`${V1}/channels/${segment(channelId)}/subscriptions`, body, { auth: true })

/** The caller's subscriptions, cancelled ones included. */
export const listSubscriptions = () => api.get(`${V1}/subscriptions`, { auth: true })

/** Change risk settings, or pause and resume with {paused}. */
export const updateSubscription = (id, body) => api.patch(subscription(id), body, { auth: true })

/** Stop copying the channel. */
export const cancelSubscription = (id) => api.delete(subscription(id), { auth: true })
