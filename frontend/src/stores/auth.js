import { defineStore } from 'pinia'
import { ApiError, authenticateWith } from '@/api/client'
import * as authApi from '@/api/auth'

// Stateless sessions: the access token lives only in this store (memory), the refresh
// token only in the API's httpOnly cookie (path /api/v1/auth). A reload restores the
// session with one silent refresh; the access token is renewed before it expires.
//
// A session that ends elsewhere (sign out everywhere, a revoked session, a deleted
// account) reaches this store two ways: the live socket closes with session_ended, or a
// refresh is refused. Either way it is cleared, `signedOutReason` says why in words for
// the login page, and every other tab of this browser follows (BroadcastChannel).
const REFRESH_MARGIN_SECONDS = 60
const channelName = 'copier-auth'

/** Why a session ended, in words for "You were signed out on this device because …". */
export function signedOutWhy(serverMessage) {
  const text = String(serverMessage || '').toLowerCase()
  if (text.includes('no longer exists')) return 'the account no longer exists.'
  if (text.includes('reuse')) return 'your session was used from two places at once, so it was ended to keep the account safe.'
  if (text.includes('revoked')) return 'the account was signed out everywhere, or this session was signed out on another device.'
  if (text.includes('expired')) return 'your session expired.'
  return 'your session ended.'
}

/** When to refresh: a minute before expiry, but never sooner than 80 % of the lifetime. */
export function refreshDelayMs(expiresIn) {
  const seconds = Math.max(Number(expiresIn) || 0, 1)
  return Math.max(seconds - REFRESH_MARGIN_SECONDS, seconds * 0.8) * 1000
}

let refreshTimer = null
let inflight = null
let broadcast = null

export const useAuthStore = defineStore('auth', {
  state: () => ({
    user: null,
    accessToken: null,
    expiresAt: 0,
    restored: false,
    // Why the last session ended without this tab signing out ('' when it did, or never).
    signedOutReason: '',
  }),
  getters: {
    signedIn: (s) => !!s.user && !!s.accessToken,
    isProvider: (s) => s.user?.account_type === 'provider',
    isSubscriber: (s) => s.user?.account_type === 'subscriber',
  },
  actions: {
    _listen() {
      // Logging out in one tab logs out every tab of this browser.
      if (broadcast || typeof BroadcastChannel === 'undefined') return
      broadcast = new BroadcastChannel(channelName)
      broadcast.onmessage = (event) => {
        if (event.data === 'logout') this._ended('you signed out in another tab.', { tell: false })
        else if (event.data?.type === 'ended') this._ended(event.data.reason, { tell: false })
      }
    },
    _setSession(tokens) {
      this.accessToken = tokens.access_token
      this.expiresAt = Date.now() + tokens.expires_in * 1000
      clearTimeout(refreshTimer)
      refreshTimer = setTimeout(() => {
        this.refresh().catch(() => {})
      }, refreshDelayMs(tokens.expires_in))
    },
    _clear() {
      clearTimeout(refreshTimer)
      refreshTimer = null
      this.user = null
      this.accessToken = null
      this.expiresAt = 0
    },
    /** The session ended elsewhere: clear it, say why, and (unless told) tell the other tabs. */
    _ended(reason, { tell = true } = {}) {
      if (!this.user && !this.accessToken) return
      this._clear()
      this.signedOutReason = reason
      if (tell) broadcast?.postMessage({ type: 'ended', reason })
    },
    /**
     * The live socket was closed with session_ended. The session may only have expired
     * (then a refresh renews it and this resolves true) or have ended everywhere (the
     * refresh is refused: signed out, with the reason; resolves false).
     */
    async sessionEnded(serverMessage) {
      if (!this.signedIn) return false
      try {
        await this.refresh()
        return true
      } catch (err) {
        if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
          this._ended(signedOutWhy(err.message || serverMessage))
        }
        return false
      }
    },
    async login(email, password) {
      this._listen()
      this.signedOutReason = ''
      const tokens = await authApi.login(email, password)
      this._setSession(tokens)
      this.user = await authApi.profile(this.accessToken)
      this.restored = true
      return this.user
    },
    async register(form) {
      await authApi.register(form)
      return this.login(form.email, form.password)
    },
    /** One refresh at a time: concurrent callers share the same rotation. */
    refresh() {
      if (!inflight) {
        inflight = (async () => {
          try {
            const tokens = await authApi.refreshTokens()
            this._setSession(tokens)
            if (!this.user) this.user = await authApi.profile(this.accessToken)
            return this.accessToken
          } catch (err) {
            // Refused: the session is over. Said so only when this tab had one (a page
            // load without a session is not a sign-out).
            if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
              if (this.user) this._ended(signedOutWhy(err.message))
              else this._clear()
            }
            throw err
          } finally {
            inflight = null
          }
        })()
      }
      return inflight
    },
    /** On page load: resume the cookie's session if there is one. Never throws. */
    async restore() {
      if (this.restored) return this.signedIn
      this._listen()
      try {
        await this.refresh()
      } catch {
        // no session — signed out
      }
      this.restored = true
      return this.signedIn
    },
    /** A fresh access token (refreshing when it is about to lapse). */
    async token() {
      if (this.accessToken && Date.now() < this.expiresAt - 5000) return this.accessToken
      return this.refresh()
    },
    // everywhere: end every session of the account (other devices too), not just this one.
    async logout({ everywhere = false } = {}) {
      const token = this.accessToken
      this._clear()
      this.signedOutReason = ''
      broadcast?.postMessage('logout')
      if (token) {
        try {
          await authApi.logout(token, { everywhere })
        } catch {
          // Already signed out on the server; the local session is gone either way.
        }
      }
    },
  },
})

// Every signed API call (`auth: true`) takes its token from this store, in the active Pinia.
authenticateWith({
  token: () => useAuthStore().token(),
  refresh: () => useAuthStore().refresh(),
})
