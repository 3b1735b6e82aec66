import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { backoffMs, useLiveStore } from './live'
import { useAuthStore } from './auth'

// A WebSocket stand-in: records what the app sends, lets the test play the server.
class FakeSocket {
  static all = []
  constructor(url) {
    this.url = url
    this.readyState = 0
    this.sent = []
    FakeSocket.all.push(this)
  }
  send(text) { this.sent.push(JSON.parse(text)) }
  close(code = 1000, reason = '') { this.readyState = 3; this.onclose?.({ code, reason }) }
  open() { this.readyState = 1; return this.onopen?.() }
  receive(msg) { this.onmessage({ data: JSON.stringify(msg) }) }
}

async function connected() {
  const auth = useAuthStore()
  auth.user = { id: 'u1', account_type: 'provider' }
  auth.accessToken = 'tok'
  auth.expiresAt = Date.now() + 900_000
  const live = useLiveStore()
  live.connect()
  const ws = FakeSocket.all.at(-1)
  await ws.open()
  ws.receive({ type: 'ready', user_id: 'u1', channels: ['c1'] })
  return { live, ws, auth }
}

beforeEach(() => {
  setActivePinia(createPinia())
  FakeSocket.all = []
  vi.stubGlobal('WebSocket', FakeSocket)
  vi.useFakeTimers()
})
afterEach(() => {
  useLiveStore().disconnect()
  vi.useRealTimers()
})

describe('live store', () => {
  it('backs off 0.5 s, 1 s, 2 s, … up to 10 s between reconnects', () => {
    expect([0, 1, 2, 10].map(backoffMs)).toEqual([500, 1000, 2000, 10000])
  })

  it('authenticates first, then lists the channels the user may signal', async () => {
    const { live, ws } = await connected()
    expect(ws.sent[0]).toEqual({ type: 'auth', token: 'tok' })
    expect(live.status).toBe('open')
    expect(live.channels).toEqual(['c1'])
  })

  it('sends a signal and resolves with the acceptance; keeps progress by signal', async () => {
    const { live, ws } = await connected()
    const sent = live.sendSignal({ channel_id: 'c1', asset: 'R_100', direction: 'CALL', expiry_seconds: 15, stake: '1' })
    const msg = ws.sent.at(-1)
    expect(msg).toMatchObject({ type: 'signal', channel_id: 'c1', direction: 'CALL' })
    ws.receive({ type: 'accepted', ref: msg.ref, signal_id: 's1' })
    await expect(sent).resolves.toMatchObject({ signal_id: 's1' })
    ws.receive({ type: 'progress', signal_id: 's1', counts: { total: 1, placed: 1 }, done: true })
    expect(live.progress.s1.counts.placed).toBe(1)
  })

  it("keeps each channel's running figures from the feed, the later snapshot winning", async () => {
    const { live, ws } = await connected()
    const two = { signals: 2, placed: 4, won: 1, lost: 1, pnl: '-0.15' }
    ws.receive({ type: 'progress', channel_id: 'c1', signal_id: 's2', counts: {}, channel: two })
    // An earlier signal's message, read before the second was counted, arrives last.
    ws.receive({ type: 'progress', channel_id: 'c1', signal_id: 's1', counts: {}, channel: { signals: 1, placed: 2, won: 0, lost: 0, pnl: '0.00' } })
    expect(live.figures.c1).toEqual(two)
    ws.receive({ type: 'progress', channel_id: 'c1', signal_id: 's3', counts: {}, channel: { ...two, signals: 3 } })
    expect(live.figures.c1.signals).toBe(3)
  })

  it("rejects with the API's error message", async () => {
    const { live, ws } = await connected()
    const sent = live.sendSignal({ channel_id: 'c1' })
    ws.receive({ type: 'error', ref: ws.sent.at(-1).ref, error: { code: 'forbidden', message: 'not your channel' } })
    await expect(sent).rejects.toThrow('not your channel')
  })

  it('reconnects by itself with backoff and says so', async () => {
    const { live, ws } = await connected()
    ws.close(1006, 'network')
    expect(live.status).toBe('reconnecting')
    expect(live.attempts).toBe(1)
    await vi.advanceTimersByTimeAsync(500)
    expect(FakeSocket.all).toHaveLength(2)
    await FakeSocket.all[1].open()
    FakeSocket.all[1].receive({ type: 'ready', channels: [] })
    expect(live.status).toBe('open')
    expect(live.attempts).toBe(0)
  })

  it('does not reconnect after sign-out', async () => {
    const { live } = await connected()
    live.disconnect()
    await vi.advanceTimersByTimeAsync(20_000)
    expect(FakeSocket.all).toHaveLength(1)
    expect(live.status).toBe('closed')
  })
})

describe('trades pushed to a subscriber', () => {
  const trade = {
    order_id: 'o1', signal_id: 's1', broker_kind: 'deriv', state: 'placed', asset: 'EURUSD', direction: 'CALL',
    stake: '10.00', currency: 'USD', at: 1700000010.5, outcome: null, profit: null, settled_at: null,
  }

  it('keeps the newest state of each trade and toasts what is new', async () => {
    const { live, ws } = await connected()
    ws.receive({ type: 'trade', trade })
    expect(live.trades.o1.state).toBe('placed')
    expect(live.toasts.map((t) => t.text)).toEqual(['EURUSD CALL 10.00 placed at Deriv'])
    ws.receive({ type: 'trade', trade }) // redelivered: nothing new
    expect(live.toasts).toHaveLength(1)
    ws.receive({ type: 'trade', trade: { ...trade, at: null, outcome: 'lost', profit: '-10.00', settled_at: 1700000070 } })
    expect(live.trades.o1).toMatchObject({ state: 'placed', at: 1700000010.5, outcome: 'lost', profit: '-10.00' })
    expect(live.toasts.at(-1).text).toBe('EURUSD CALL lost −10.00 USD')
  })

  it('dismisses toasts by themselves, and on request', async () => {
    const { live, ws } = await connected()
    ws.receive({ type: 'trade', trade })
    ws.receive({ type: 'trade', trade: { ...trade, order_id: 'o2', state: 'rejected', reason: 'market is closed' } })
    expect(live.toasts).toHaveLength(2)
    live.dismissToast(live.toasts[1].id)
    expect(live.toasts).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(live.toasts).toEqual([])
  })

  it('collapses a burst into one summary toast', async () => {
    const { live, ws } = await connected()
    for (let i = 0; i < 12; i += 1) ws.receive({ type: 'trade', trade: { ...trade, order_id: `o${i}` } })
    expect(Object.keys(live.trades)).toHaveLength(12)
    expect(live.toasts.map((t) => t.text)).toEqual(['12 trades placed'])
  })

  it('asks views to re-read on a resync and after a reconnect, not on the first connection', async () => {
    const { live, ws } = await connected()
    expect(live.resyncs).toBe(0)
    ws.receive({ type: 'resync' })
    expect(live.resyncs).toBe(1)
    ws.close(1006, 'network')
    await vi.advanceTimersByTimeAsync(500)
    await FakeSocket.all[1].open()
    FakeSocket.all[1].receive({ type: 'ready', channels: [] })
    expect(live.resyncs).toBe(2)
  })

  it('forgets the trades and toasts of a user who signs out', async () => {
    const { live, ws } = await connected()
    ws.receive({ type: 'trade', trade })
    live.disconnect()
    expect(live.trades).toEqual({})
    expect(live.toasts).toEqual([])
  })
})
