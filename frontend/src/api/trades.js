// The caller's own trades as a subscriber (GET /orders, apps/api/signals/routes.py).
import { api, withQuery } from './client'
import { V1 } from './paths'

/** The caller's orders, newest first, with outcomes. */
export const listTrades = ({ limit } = {}) => api.get(withQuery(`${V1}/orders`, { limit }), { auth: true })
