import { beforeEach, describe, expect, it } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { useHealthStore, normalizeChecks } from './health'
import { deferred, jsonResponse, mockFetch } from '@/test/helpers'

describe('health store', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
  })

  it('starts unknown and idle', () => {
    const health = useHealthStore()
    expect(health.$state).toMatchObject({ status: 'unknown', checks: {}, error: null, loading: false })
  })

  it('goes loading → ok', async () => {
    const pending = deferred()
    const fetch = mockFetch()
    fetch.mockReturnValueOnce(pending.promise)
    const health = useHealthStore()

    const done = health.fetchReady()
    expect(health.loading).toBe(true)
    expect(health.error).toBeNull()
    expect(fetch.mock.calls[0][0]).toBe('/ready')

    pending.resolve(jsonResponse({ status: 'ok', checks: { nats: 'ok', redis: { status: 'ok' } } }))
    await done

    expect(health.loading).toBe(false)
    expect(health.status).toBe('ok')
    expect(health.error).toBeNull()
    expect(health.isOk).toBe(true)
    expect(health.checks).toEqual({ nats: 'ok', redis: { status: 'ok' } })
    expect(health.checkList.map((c) => [c.name, c.ok])).toEqual([['nats', true], ['redis', true]])
    expect(health.checkedAt).toBeInstanceOf(Date)
  })

  it('goes loading → error and keeps the checks a 503 reports', async () => {
    const pending = deferred()
    const fetch = mockFetch()
    fetch.mockReturnValueOnce(pending.promise)
    const health = useHealthStore()

    const done = health.fetchReady()
    expect(health.loading).toBe(true)

    pending.resolve(
      jsonResponse(
        {
          error: { code: 'not_ready', message: 'MongoDB is not reachable', details: null },
          checks: { mongodb: { ok: false, error: 'connection refused' }, nats: { ok: true } },
        },
        { status: 503, statusText: 'Service Unavailable' },
      ),
    )
    await done

    expect(health.loading).toBe(false)
    expect(health.status).toBe('error')
    expect(health.error).toBe('MongoDB is not reachable')
    expect(health.isOk).toBe(false)
    expect(health.checkList).toEqual([
      { name: 'mongodb', ok: false, detail: 'connection refused' },
      { name: 'nats', ok: true, detail: null },
    ])
  })

  it('goes loading → error on a network failure', async () => {
    mockFetch(new TypeError('Failed to fetch'))
    const health = useHealthStore()
    await health.fetchReady()
    expect(health.loading).toBe(false)
    expect(health.status).toBe('error')
    expect(health.error).toBe('Network error: Failed to fetch')
  })

  it('clears a previous error when a retry succeeds', async () => {
    mockFetch(new TypeError('down'), jsonResponse({ status: 'ready' }))
    const health = useHealthStore()
    await health.fetchReady()
    expect(health.error).not.toBeNull()
    await health.fetchReady()
    expect(health.error).toBeNull()
    expect(health.status).toBe('ready')
    expect(health.isOk).toBe(true)
  })
})

describe('normalizeChecks', () => {
  it('accepts objects, lists and booleans', () => {
    expect(normalizeChecks(null)).toEqual([])
    expect(normalizeChecks({ api: true, db: false })).toEqual([
      { name: 'api', ok: true, detail: null },
      { name: 'db', ok: false, detail: null },
    ])
    expect(normalizeChecks([{ name: 'redis', status: 'fail', latency_ms: 3 }])).toEqual([
      { name: 'redis', ok: false, detail: 'fail 3 ms' },
    ])
  })
})
