import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { jsonResponse, mockFetch } from '@/test/helpers'
import { authenticateWith } from './client'
import * as auth from './auth'
import * as brokers from './brokers'
import * as channels from './channels'
import * as health from './health'
import * as payments from './payments'
import * as signals from './signals'
import * as subscriptions from './subscriptions'
import * as trades from './trades'

beforeEach(() => authenticateWith({ token: async () => 'tkn', refresh: async () => 'tkn2' }))
afterEach(() => authenticateWith(null))

// [name, call, method, url, body (undefined: none), signed]
const CALLS = [
  ['listChannels', () => channels.listChannels({ sort: 'price', order: 'asc', asset: '', page: 2 }), 'GET', '/api/v1/channels?sort=price&order=asc&page=2', undefined, false],
  ['getTrackRecord', () => channels.getTrackRecord('c1'), 'GET', '/api/v1/channels/c1/track-record', undefined, false],
  ['getChannel', () => channels.getChannel('c1'), 'GET', '/api/v1/channels/c1', undefined, false],
  ['createChannel', () => channels.createChannel({ name: 'A' }), 'POST', '/api/v1/channels', { name: 'A' }, true],
  ['updateChannel', () => channels.updateChannel('c1', { name: 'B' }), 'PATCH', '/api/v1/channels/c1', { name: 'B' }, true],
  ['listDelegates', () => channels.listDelegates('c1'), 'GET', '/api/v1/channels/c1/delegates', undefined, true],
  ['addDelegate', () => channels.addDelegate('c1', 't@example.test'), 'POST', '/api/v1/channels/c1/delegates', { email: 't@example.test' }, true],
  ['removeDelegate', () => channels.removeDelegate('c1', 'u2'), 'DELETE', '/api/v1/channels/c1/delegates/u2', undefined, true],
  ['listSubscribers', () => channels.listSubscribers('c1'), 'GET', '/api/v1/channels/c1/subscribers', undefined, true],
  ['subscribe', () => subscriptions.subscribe('c1', { stake: '1' }), 'POST', '/api/v1/channels/c1/subscriptions', { stake: '1' }, true],
  ['listSubscriptions', () => subscriptions.listSubscriptions(), 'GET', '/api/v1/subscriptions', undefined, true],
  ['updateSubscription', () => subscriptions.updateSubscription('s1', { paused: true }), 'PATCH', '/api/v1/subscriptions/s1', { paused: true }, true],
  ['cancelSubscription', () => subscriptions.cancelSubscription('s1'), 'DELETE', '/api/v1/subscriptions/s1', undefined, true],
  ['listBrokerAccounts', () => brokers.listBrokerAccounts(), 'GET', '/api/v1/broker-accounts', undefined, true],
  ['linkBrokerAccount', () => brokers.linkBrokerAccount({ kind: 'deriv' }), 'POST', '/api/v1/broker-accounts', { kind: 'deriv' }, true],
  ['verifyBrokerAccount', () => brokers.verifyBrokerAccount('b1'), 'POST', '/api/v1/broker-accounts/b1/verify', undefined, true],
  ['unlinkBrokerAccount', () => brokers.unlinkBrokerAccount('b1'), 'DELETE', '/api/v1/broker-accounts/b1', undefined, true],
  ['listSignals', () => signals.listSignals('c1', { limit: 100 }), 'GET', '/api/v1/channels/c1/signals?limit=100', undefined, true],
  ['listTrades', () => trades.listTrades({ limit: 200 }), 'GET', '/api/v1/orders?limit=200', undefined, true],
  ['tradesCsv', () => trades.tradesCsv({ outcome: 'won' }), 'GET', '/api/v1/orders.csv?outcome=won', undefined, true],
  ['startCheckout', () => payments.startCheckout('c1', { stake: '1' }), 'POST', '/api/v1/channels/c1/checkout', { stake: '1' }, true],
  ['cancelAtPeriodEnd', () => payments.cancelAtPeriodEnd('s1'), 'POST', '/api/v1/subscriptions/s1/cancel', undefined, true],
  ['getRevenue', () => payments.getRevenue(), 'GET', '/api/v1/me/revenue', undefined, true],
  ['listReceipts', () => payments.listReceipts(), 'GET', '/api/v1/me/receipts', undefined, true],
  ['readiness', () => health.readiness(), 'GET', '/ready', undefined, false],
  ['register', () => auth.register({ email: 'e' }), 'POST', '/api/v1/auth/register', { email: 'e' }, false],
]

describe('resource modules', () => {
  it.each(CALLS)('%s sends its method, path and body', async (_name, call, method, url, body, signed) => {
    const fetch = mockFetch(jsonResponse({ ok: true }))
    await expect(call()).resolves.toEqual({ ok: true })
    const [sentUrl, init] = fetch.mock.calls[0]
    expect(sentUrl).toBe(url)
    expect(init.method).toBe(method)
    expect(init.body).toBe(body === undefined ? undefined : JSON.stringify(body))
    expect(init.headers.Authorization).toBe(signed ? 'Bearer tkn' : undefined)
  })

  it('escapes ids, so an id never reaches another route', async () => {
    const fetch = mockFetch(jsonResponse({}), jsonResponse(null, { status: 204 }))
    await channels.getChannel('a/b?c')
    await subscriptions.cancelSubscription('../x')
    expect(fetch.mock.calls[0][0]).toBe('/api/v1/channels/a%2Fb%3Fc')
    expect(fetch.mock.calls[1][0]).toBe('/api/v1/subscriptions/..%2Fx')
  })

  it('leaves out a limit that is not given', async () => {
    const fetch = mockFetch(jsonResponse([]))
    await channels.listChannels()
    expect(fetch.mock.calls[0][0]).toBe('/api/v1/channels')
  })
})

describe('auth module', () => {
  it('signs in, refreshes and signs out with the refresh cookie', async () => {
    const fetch = mockFetch(jsonResponse({}), jsonResponse({}), jsonResponse(undefined, { status: 204 }), jsonResponse(undefined, { status: 204 }))
    await auth.login('p@example.test', 'secret123')
    await auth.refreshTokens()
    await auth.logout('a1')
    await auth.logout('a1', { everywhere: true })
    expect(fetch.mock.calls.map(([url, init]) => [url, init.method, init.credentials])).toEqual([
      ['/api/v1/auth/login', 'POST', 'include'],
      ['/api/v1/auth/refresh', 'POST', 'include'],
      ['/api/v1/auth/logout', 'POST', 'include'],
      ['/api/v1/auth/logout-all', 'POST', 'include'],
    ])
    expect(JSON.parse(fetch.mock.calls[0][1].body)).toEqual({ email: 'p@example.test', password: 'secret123' })
    expect(fetch.mock.calls[2][1].headers.Authorization).toBe('Bearer a1')
  })

  it("reads the profile with the token it is given, not the session's", async () => {
    const fetch = mockFetch(jsonResponse({ id: 'u1' }))
    await expect(auth.profile('fresh')).resolves.toEqual({ id: 'u1' })
    expect(fetch.mock.calls[0][0]).toBe('/api/v1/me')
    expect(fetch.mock.calls[0][1].headers.Authorization).toBe('Bearer fresh')
  })
})
