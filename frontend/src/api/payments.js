// Paid subscriptions (apps/api/payments/routes.py); every call is signed.
import { api } from './client'
import { segment, V1 } from './paths'

/** Start paying for a channel's plan: {broker_account_id, stake_mode, …} → {checkout_url}. */
export const startCheckout = (channelId, body) =>
  api.post(`${V1}/channels/${segment(channelId)}/checkout`, body, { auth: true })

/** Stop renewing a subscription: it copies until its expires_at, then ends. */
export const cancelAtPeriodEnd = (id) =>
  api.post(`${V1}/subscriptions/${segment(id)}/cancel`, undefined, { auth: true })

/** A provider's paid revenue per channel and month, and subscribers by payment state. */
export const getRevenue = () => api.get(`${V1}/me/revenue`, { auth: true })

/** The caller's paid invoices, newest first, each with its receipt URL. */
export const listReceipts = () => api.get(`${V1}/me/receipts`, { auth: true })
