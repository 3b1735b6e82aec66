import { afterEach, describe, expect, it, vi } from 'vitest'
import { api, ApiError, apiUrl, authenticateWith, normalizeBase, request, withQuery, wsUrl } from './client'
import { jsonResponse, mockFetch } from '@/test/helpers'

afterEach(() => {
  vi.unstubAllEnvs()
})

describe('apiUrl', () => {
  it('defaults to same origin (empty base)', () => {
    vi.stubEnv('VITE_API_BASE', '')
    expect(apiUrl('/ready')).toBe('/ready')
    expect(apiUrl('api/v1/channels')).toBe('/api/v1/channels')
  })

  it('prefixes VITE_API_BASE without doubling slashes', () => {
    vi.stubEnv('VITE_API_BASE', 'https://api.example.com/')
    expect(apiUrl('/ready')).toBe('https://api.example.com/ready')
  })

  it('normalises bases', () => {
    expect(normalizeBase(undefined)).toBe('')
    expect(normalizeBase(' http://x:8000// ')).toBe('http://x:8000')
  })
})

describe('wsUrl', () => {
  it('derives the socket URL from the API base or the page', () => {
    expect(wsUrl('', { protocol: 'https:', host: 'app.example.com' })).toBe('wss://app.example.com/api/v1/ws')
    expect(wsUrl('http://127.0.0.1:8000')).toBe('ws://127.0.0.1:8000/api/v1/ws')
  })
})

describe('withQuery', () => {
  it('appends the parameters that have a value', () => {
    expect(withQuery('/api/v1/orders', { limit: 200 })).toBe('/api/v1/orders?limit=200')
    expect(withQuery('/api/v1/orders', { limit: undefined, before: null })).toBe('/api/v1/orders')
    expect(withQuery('/x', { q: 'a b&c' })).toBe('/x?q=a+b%26c')
  })
})

describe('request', () => {
  it('returns parsed JSON and sends JSON', async () => {
    vi.stubEnv('VITE_API_BASE', 'http://127.0.0.1:8000')
    const fetch = mockFetch(jsonResponse({ id: 'c1' }, { status: 201 }))

    const data = await api.post('/api/v1/channels', { name: 'Alpha' }, { token: 'tkn' })

    expect(data).toEqual({ id: 'c1' })
    expect(fetch).toHaveBeenCalledOnce()
    const [url, init] = fetch.mock.calls[0]
    expect(url).toBe('http://127.0.0.1:8000/api/v1/channels')
    expect(init.method).toBe('POST')
    expect(init.body).toBe('{"name":"Alpha"}')
    expect(init.headers['Content-Type']).toBe('application/json')
    expect(init.headers.Accept).toBe('application/json')
    expect(init.headers.Authorization).toBe('Bearer tkn')
  })

  it('maps the API error body to an Error with its message', async () => {
    mockFetch(
      jsonResponse(
        { error: { code: 'channel_not_found', message: 'Channel c9 does not exist', details: { id: 'c9' } } },
        { status: 404, statusText: 'Not Found' },
      ),
    )

    const err = await request('/api/v1/channels/c9').catch((e) => e)

    expect(err).toBeInstanceOf(Error)
    expect(err).toBeInstanceOf(ApiError)
    expect(err.message).toBe('Channel c9 does not exist')
    expect(err.status).toBe(404)
    expect(err.code).toBe('channel_not_found')
    expect(err.details).toEqual({ id: 'c9' })
  })

  it('falls back to the HTTP status when the body is not an error envelope', async () => {
    mockFetch(jsonResponse('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }))
    await expect(api.get('/ready')).rejects.toThrow('HTTP 502 Bad Gateway')
  })

  it('wraps network failures in an ApiError with status 0', async () => {
    mockFetch(new TypeError('Failed to fetch'))
    const err = await api.get('/ready').catch((e) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err.status).toBe(0)
    expect(err.code).toBe('network_error')
    expect(err.message).toBe('Network error: Failed to fetch')
  })

  it('returns null for empty bodies', async () => {
    mockFetch(jsonResponse(undefined, { status: 204 }))
    await expect(api.delete('/api/v1/channels/c1')).resolves.toBeNull()
  })
})

describe('signed requests', () => {
  afterEach(() => authenticateWith(null))

  const unauthorized = () => jsonResponse({ error: { code: 'unauthorized', message: 'expired' } }, { status: 401 })

  it("carries the session's token", async () => {
    authenticateWith({ token: async () => 't1', refresh: vi.fn() })
    const fetch = mockFetch(jsonResponse([]))
    await api.get('/api/v1/subscriptions', { auth: true })
    expect(fetch.mock.calls[0][1].headers.Authorization).toBe('Bearer t1')
  })

  it('renews the token once after a 401 and sends the call again', async () => {
    const refresh = vi.fn(async () => 't2')
    authenticateWith({ token: async () => 't1', refresh })
    const fetch = mockFetch(unauthorized(), jsonResponse({ id: 's1' }))
    await expect(api.patch('/api/v1/subscriptions/s1', { paused: true }, { auth: true })).resolves.toEqual({ id: 's1' })
    expect(refresh).toHaveBeenCalledOnce()
    expect(fetch.mock.calls[1][1].headers.Authorization).toBe('Bearer t2')
    expect(fetch.mock.calls[1][1].body).toBe('{"paused":true}')
  })

  it('gives up after the one retry, and never retries other errors', async () => {
    const refresh = vi.fn(async () => 't2')
    authenticateWith({ token: async () => 't1', refresh })
    mockFetch(unauthorized(), unauthorized())
    await expect(api.get('/api/v1/orders', { auth: true })).rejects.toMatchObject({ status: 401 })
    const fetch = mockFetch(jsonResponse({ error: { code: 'forbidden', message: 'no' } }, { status: 403 }))
    await expect(api.get('/api/v1/orders', { auth: true })).rejects.toThrow('no')
    expect(fetch).toHaveBeenCalledOnce()
    expect(refresh).toHaveBeenCalledOnce()
  })

  it('refuses a signed call when no session is registered, without a request', async () => {
    authenticateWith(null)
    const fetch = mockFetch()
    await expect(api.get('/api/v1/orders', { auth: true })).rejects.toMatchObject({ status: 401, code: 'unauthorized' })
    expect(fetch).not.toHaveBeenCalled()
  })
})
