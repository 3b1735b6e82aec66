// The caller's own trades as a subscriber (GET /orders and /orders.csv, apps/api/trades/routes.py).
import { api, withQuery } from './client'
import { V1 } from './paths'

/** The caller's trades, newest first, filtered (channel_id, outcome, since, until, limit). */
export const listTrades = (params = {}) => api.get(withQuery(`${V1}/orders`, params), { auth: true })

/** The CSV export's path for the same filters. */
export const tradesCsvPath = (params = {}) => withQuery(`${V1}/orders.csv`, params)

/** The CSV export's text (signed: the export is the caller's own). */
export const tradesCsv = (params = {}) =>
  api.get(tradesCsvPath(params), { auth: true, headers: { Accept: 'text/csv' } })
