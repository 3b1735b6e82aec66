import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { jsonResponse, mockFetch } from '@/test/helpers'
import { listSubscriptions } from '@/api/subscriptions'
import { refreshDelayMs, signedOutWhy, useAuthStore } from './auth'

const TOKENS = { access_token: 'a1', token_type: 'Bearer', expires_in: 900, refresh_token: 'r1' }
const ME = { id: 'u1', email: 'p@example.test', display_name: 'P', account_type: 'provider', is_admin: false }

beforeEach(() => {
  setActivePinia(createPinia())
  vi.useFakeTimers()
})
afterEach(() => vi.useRealTimers())

describe('auth store', () => {
  it('refreshes a minute before expiry (never before 80 % of the lifetime)', () => {
    expect(refreshDelayMs(900)).toBe(840_000)
    expect(refreshDelayMs(60)).toBe(48_000)
  })

  it('logs in: token in memory, refresh cookie requested, profile loaded', async () => {
    const fetch = mockFetch(jsonResponse(TOKENS), jsonResponse(ME))
    const auth = useAuthStore()
    await auth.login('p@example.test', 'secret123')
    expect(auth.signedIn).toBe(true)
    expect(auth.isProvider).toBe(true)
    expect(fetch.mock.calls[0][0]).toBe('/api/v1/auth/login')
    expect(fetch.mock.calls[0][1].credentials).toBe('include')
    expect(fetch.mock.calls[1][1].headers.Authorization).toBe('Bearer a1')
  })

  it('silently refreshes before the access token expires', async () => {
    const fetch = mockFetch(jsonResponse(TOKENS), jsonResponse(ME), jsonResponse({ ...TOKENS, access_token: 'a2' }))
    const auth = useAuthStore()
    await auth.login('p@example.test', 'secret123')
    await vi.advanceTimersByTimeAsync(840_000)
    expect(fetch.mock.calls[2][0]).toBe('/api/v1/auth/refresh')
    expect(fetch.mock.calls[2][1].credentials).toBe('include')
    expect(auth.accessToken).toBe('a2')
  })

  it('restores a session from the cookie alone, or stays signed out', async () => {
    mockFetch(jsonResponse(TOKENS), jsonResponse(ME))
    const auth = useAuthStore()
    expect(await auth.restore()).toBe(true)
    expect(auth.user.id).toBe('u1')

    setActivePinia(createPinia())
    mockFetch(jsonResponse({ error: { code: 'unauthorized', message: 'refresh token required' } }, { status: 401 }))
    const anonymous = useAuthStore()
    expect(await anonymous.restore()).toBe(false)
    expect(anonymous.signedIn).toBe(false)
  })

  it('signs API calls with its token and renews it once after a 401', async () => {
    const fetch = mockFetch(
      jsonResponse(TOKENS), jsonResponse(ME),
      jsonResponse({ error: { code: 'unauthorized', message: 'expired' } }, { status: 401 }),
      jsonResponse({ ...TOKENS, access_token: 'a2' }),
      jsonResponse([{ id: 'c1' }]),
    )
    const auth = useAuthStore()
    await auth.login('p@example.test', 'secret123')
    expect(await listSubscriptions()).toEqual([{ id: 'c1' }])
    expect(fetch.mock.calls[2][1].headers.Authorization).toBe('Bearer a1')
    expect(fetch.mock.calls[3][0]).toBe('/api/v1/auth/refresh')
    expect(fetch.mock.calls[4][1].headers.Authorization).toBe('Bearer a2')
    expect(auth.accessToken).toBe('a2')
  })

  it('shares one refresh between concurrent callers (the token rotates once)', async () => {
    const fetch = mockFetch(jsonResponse(TOKENS), jsonResponse(ME))
    const auth = useAuthStore()
    await Promise.all([auth.refresh(), auth.refresh(), auth.token()])
    expect(fetch.mock.calls.filter((c) => c[0] === '/api/v1/auth/refresh')).toHaveLength(1)
    expect(auth.accessToken).toBe('a1')
  })

  it('logs out: revokes on the server and forgets the token', async () => {
    const fetch = mockFetch(jsonResponse(TOKENS), jsonResponse(ME), jsonResponse(undefined, { status: 204 }))
    const auth = useAuthStore()
    await auth.login('p@example.test', 'secret123')
    await auth.logout()
    expect(auth.signedIn).toBe(false)
    expect(fetch.mock.calls[2][0]).toBe('/api/v1/auth/logout')
    expect(fetch.mock.calls[2][1].headers.Authorization).toBe('Bearer a1')
  })

  it('logs out everywhere: ends every session of the account', async () => {
    const fetch = mockFetch(jsonResponse(TOKENS), jsonResponse(ME), jsonResponse(undefined, { status: 204 }))
    const auth = useAuthStore()
    await auth.login('p@example.test', 'secret123')
    await auth.logout({ everywhere: true })
    expect(auth.signedIn).toBe(false)
    expect(fetch.mock.calls[2][0]).toBe('/api/v1/auth/logout-all')
  })

  it('says in words why a session ended', () => {
    expect(signedOutWhy('refresh token revoked')).toMatch(/signed out everywhere/)
    expect(signedOutWhy('session revoked')).toMatch(/signed out everywhere/)
    expect(signedOutWhy('account no longer exists')).toBe('the account no longer exists.')
    expect(signedOutWhy('invalid or expired refresh token')).toBe('your session expired.')
    expect(signedOutWhy('')).toBe('your session ended.')
  })

  it('a socket ended by an expiry renews the session and stays signed in', async () => {
    mockFetch(jsonResponse(TOKENS), jsonResponse(ME), jsonResponse({ ...TOKENS, access_token: 'a2' }))
    const auth = useAuthStore()
    await auth.login('p@example.test', 'secret123')
    expect(await auth.sessionEnded('access token expired; send a new auth message')).toBe(true)
    expect(auth.signedIn).toBe(true)
    expect(auth.signedOutReason).toBe('')
  })

  it('a socket ended by signing out everywhere signs this tab out, with the reason', async () => {
    mockFetch(
      jsonResponse(TOKENS), jsonResponse(ME),
      jsonResponse({ error: { code: 'unauthorized', message: 'refresh token revoked' } }, { status: 401 }),
    )
    const auth = useAuthStore()
    await auth.login('p@example.test', 'secret123')
    expect(await auth.sessionEnded('session revoked')).toBe(false)
    expect(auth.signedIn).toBe(false)
    expect(auth.signedOutReason).toMatch(/signed out everywhere/)
  })

  it('a page load without a session is not a sign-out', async () => {
    mockFetch(jsonResponse({ error: { code: 'unauthorized', message: 'refresh token revoked' } }, { status: 401 }))
    const auth = useAuthStore()
    expect(await auth.restore()).toBe(false)
    expect(auth.signedOutReason).toBe('')
  })
})
