// Accounts and sessions (apps/api/auth/routes.py). The refresh token travels only in the
// API's httpOnly cookie, so the calls that set, rotate or revoke it send credentials.
// These calls take the access token explicitly: they make or end the session the client
// signs other calls with, so they cannot rely on it.
import { api } from './client'
import { V1 } from './paths'

/** Create an account: {email, password, display_name, account_type}. */
export const register = (form) => api.post(`${V1}/auth/register`, form)

/** Sign in; resolves with {access_token, expires_in, …} and sets the refresh cookie. */
export const login = (email, password) =>
  api.post(`${V1}/auth/login`, { email, password }, { credentials: 'include' })

/** Rotate the refresh cookie; resolves with a fresh access token. */
export const refreshTokens = () => api.post(`${V1}/auth/refresh`, undefined, { credentials: 'include' })

/** The signed-in user's profile. */
export const profile = (token) => api.get(`${V1}/me`, { token })

/** End this session, or every session of the account when `everywhere`. */
export const logout = (token, { everywhere = false } = {}) =>
  api.post(everywhere ? `${V1}/auth/logout-all` : `${V1}/auth/logout`, undefined, { token, credentials: 'include' })
