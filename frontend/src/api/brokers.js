// The caller's broker accounts (apps/api/brokers/routes.py); every call is signed.
import { api } from './client'
import { segment, V1 } from './paths'

const ACCOUNTS = `${V1}/broker-accounts`

/** Linked accounts, with balance and verification time. */
export const listBrokerAccounts = () => api.get(ACCOUNTS, { auth: true })

/** Link an account: {kind, label, credentials: {token}}. */
export const linkBrokerAccount = (body) => api.post(ACCOUNTS, body, { auth: true })

/** Check the credentials with the broker; resolves with the updated account. */
export const verifyBrokerAccount = (id) => api.post(`${ACCOUNTS}/${segment(id)}/verify`, undefined, { auth: true })

/** Unlink an account. */
export const unlinkBrokerAccount = (id) => api.delete(`${ACCOUNTS}/${segment(id)}`, { auth: true })

/**
 * Re-link an account whose credentials the broker refused: {token} for Deriv,
 * {login, password} (or {token}: an ssid) for IQ Option. The broker checks them first;
 * resolves with the account, active again.
 */
export const relinkBrokerAccount = (id, credentials) =>
  api.put(`${ACCOUNTS}/${segment(id)}/credentials`, { credentials }, { auth: true })
