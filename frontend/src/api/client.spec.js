import { afterEach, describe, expect, it, vi } from 'vitest'
import { api, ApiError, apiUrl, normalizeBase, request } from './client'
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
