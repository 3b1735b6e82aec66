// The marketplace (/channels) and the public channel page's track record and past signals,
// against the API contract's shapes (GET /channels page, /track-record, /signals).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { createMemoryHistory } from 'vue-router'
import ChannelsView from './ChannelsView.vue'
import TrackRecord from '@/components/TrackRecord.vue'
import SignalHistory from '@/components/SignalHistory.vue'
import { createAppRouter } from '@/router'
import { drawdownPoints, equityPoints } from '@/lib/track'
import { jsonResponse, routeFetch } from '@/test/helpers'

const W = (over = {}) => ({
  signals: 4, settled: 4, won: 3, lost: 1, win_rate: 0.75, return_on_stake: '0.25', profit: '1.00',
  max_drawdown: '1.50', avg_delay_ms: 120, p95_delay_ms: 300, ...over,
})
const CARD = {
  id: 'c1', name: 'Alpha', description: 'EURUSD calls', provider: { id: 'p1', display_name: 'Paula' },
  plan: { price: '10', currency: 'USD', period_days: 30 }, subscriber_count: 7,
  performance: { signals: 4, orders_placed: 4, wins: 3, losses: 1, win_rate: '0.75', pnl: '1' },
  created_at: '2026-01-01T00:00:00Z', track_30d: W(), track_all: W(), record_days: 45, assets: ['EURUSD', 'R_100'],
}
const FRESH = { ...CARD, id: 'c2', name: 'Fresh', subscriber_count: 0, track_30d: null, track_all: null, record_days: 0, assets: [] }
const NOW = 1_800_000_000
const RECORD = {
  channel_id: 'c1', windows: { '7d': W({ signals: 1 }), '30d': W(), '90d': W(), all: W({ return_on_stake: '-0.10' }) },
  first_signal_at: NOW - 45 * 86400, record_days: 45,
  equity: [
    { at: NOW - 40 * 86400, profit: '2', signal_id: 's1' },
    { at: NOW - 20 * 86400, profit: '-1', signal_id: 's2' },
    { at: NOW - 3 * 86400, profit: '1.5', signal_id: 's3' },
  ],
  subscribers: [{ day: '2026-12-01', count: 3 }],
}

let pinia
beforeEach(() => {
  pinia = createPinia()
  setActivePinia(pinia)
})
afterEach(() => vi.useRealTimers())

async function mountList(path = '/channels') {
  const router = createAppRouter(createMemoryHistory())
  router.push(path)
  await router.isReady()
  const w = mount(ChannelsView, { global: { plugins: [pinia, router] } })
  await flushPromises()
  return { w, router }
}

describe('ChannelsView', () => {
  it('shows cards with the 30-day return, win rate, drawdown, subscribers, price, age and assets', async () => {
    routeFetch({ 'GET /api/v1/channels?page_size=12': { items: [CARD, FRESH], page: 1, page_size: 12, total: 2 } })
    const { w } = await mountList()
    const card = w.get('[data-testid=channel-card-c1]')
    expect(card.get('[data-testid=card-return]').text()).toBe('25.0%')
    expect(card.get('[data-testid=card-win-rate]').text()).toBe('75.0%')
    expect(card.get('[data-testid=card-drawdown]').text()).toBe('1.50')
    expect(card.get('[data-testid=card-subscribers]').text()).toBe('7')
    expect(card.get('[data-testid=card-price]').text()).toContain('10.00 USD / 30 days')
    expect(card.get('[data-testid=card-age]').text()).toBe('45 days')
    expect(card.get('[data-testid=card-assets]').text()).toContain('EURUSD')
    const fresh = w.get('[data-testid=channel-card-c2]')
    expect(fresh.get('[data-testid=card-age]').text()).toBe('No record yet')
    expect(fresh.get('[data-testid=card-return]').text()).toBe('—')
    expect(w.get('[data-testid=channel-total]').text()).toBe('2 channels')
  })

  it('sends the sort and filters to the server, keeps them in the URL and pages', async () => {
    const fetch = routeFetch({
      'GET /api/v1/channels?page_size=12': { items: [CARD], page: 1, page_size: 12, total: 30 },
      'GET /api/v1/channels?sort=price&order=asc&page_size=12': { items: [FRESH], page: 1, page_size: 12, total: 30 },
      'GET /api/v1/channels?sort=price&order=asc&asset=EURUSD&min_win_rate=0.6&page_size=12': { items: [CARD], page: 1, page_size: 12, total: 13 },
      'GET /api/v1/channels?sort=price&order=asc&asset=EURUSD&min_win_rate=0.6&page=2&page_size=12': { items: [FRESH], page: 2, page_size: 12, total: 13 },
    })
    const { w, router } = await mountList()
    await w.get('[data-testid=sort]').setValue('price')
    await flushPromises()
    await w.get('[data-testid=order]').setValue('asc')
    await flushPromises()
    expect(w.find('[data-testid=channel-card-c2]').exists()).toBe(true)
    await w.get('[data-testid=filter-asset]').setValue('eurusd')
    await w.get('[data-testid=filter-min-win-rate]').setValue('60')
    await w.get('[data-testid=channel-filters]').trigger('submit')
    await flushPromises()
    expect(router.currentRoute.value.query).toEqual({ sort: 'price', order: 'asc', asset: 'eurusd', min_win_rate: '60' })
    expect(w.get('[data-testid=page-info]').text()).toBe('Page 1 of 2')
    await w.get('[data-testid=page-next]').trigger('click')
    await flushPromises()
    expect(w.get('[data-testid=page-info]').text()).toBe('Page 2 of 2')
    expect(fetch.mock.calls.map(([url]) => url).at(-1)).toContain('page=2')
  })

  it('says when nothing matches, and shows a failure with a retry', async () => {
    routeFetch({ 'GET /api/v1/channels?asset=XAUUSD&page_size=12': { items: [], page: 1, page_size: 12, total: 0 } })
    const { w } = await mountList('/channels?asset=XAUUSD')
    expect(w.get('[data-testid=empty]').text()).toBe('No channel matches these filters.')
    routeFetch({ 'GET /api/v1/channels?page_size=12': () => jsonResponse({ error: { code: 'invalid_request', message: 'sort must be one of …' } }, { status: 400 }) })
    const other = await mountList('/channels')
    expect(other.w.get('[role=alert]').text()).toContain('sort must be one of')
  })
})

describe('track series', () => {
  it('re-bases the equity curve on the window and measures the drawdown below the peak', () => {
    const all = equityPoints(RECORD.equity, 'all', NOW)
    expect(all.map((p) => p.y)).toEqual([2, -1, 1.5])
    const month = equityPoints(RECORD.equity, '30d', NOW)
    expect(month.map((p) => p.y)).toEqual([0, -3, -0.5])
    expect(drawdownPoints(all).map((p) => p.y)).toEqual([0, -3, -0.5])
    expect(month[0].x).toBe(NOW - 30 * 86400)
    expect(equityPoints([], '7d', NOW)).toEqual([])
    expect(drawdownPoints([{ x: 1, y: -1 }, { x: 2, y: 1 }]).map((p) => p.y)).toEqual([-1, 0])
  })
})

describe('TrackRecord', () => {
  it('shows the window figures and both charts, and switches windows', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(NOW * 1000)
    routeFetch({ 'GET /api/v1/channels/c1/track-record': RECORD })
    const w = mount(TrackRecord, { props: { channelId: 'c1', currency: 'USD' }, global: { plugins: [pinia] } })
    await flushPromises()
    expect(w.get('[data-testid=track-win-rate]').text()).toBe('75.0%')
    expect(w.get('[data-testid=track-drawdown]').text()).toBe('1.50 USD')
    expect(w.get('[data-testid=track-age]').text()).toBe('45 d')
    expect(w.findAll('canvas')).toHaveLength(2)
    await w.get('[data-testid=window-all]').trigger('click')
    expect(w.get('[data-testid=track-return]').text()).toBe('-10.0%')
    expect(w.get('[data-testid=track-return]').classes()).toContain('text-danger')
    await w.get('[data-testid=window-7d]').trigger('click')
    expect(w.get('[data-testid=track-signals]').text()).toBe('1')
    w.unmount()
  })

  it('says "no track record yet" when the API has none (404)', async () => {
    routeFetch({})
    const w = mount(TrackRecord, { props: { channelId: 'c1' }, global: { plugins: [pinia] } })
    await flushPromises()
    expect(w.get('[data-testid=empty]').text()).toContain('No track record yet')
  })
})

describe('SignalHistory', () => {
  it('lists past signals to a visitor without signing in, with outcome and sender', async () => {
    const fetch = routeFetch({
      'GET /api/v1/channels/c1/signals?limit=100': [
        { signal_id: 's1', channel_id: 'c1', asset: 'EURUSD', direction: 'CALL', expiry_seconds: 60, stake: '5', created_at: NOW, outcome: 'lost', profit_at_stake: '-5', sent_by: { id: 'p1', display_name: 'Paula', role: 'owner' } },
      ],
    })
    const w = mount(SignalHistory, { props: { channelId: 'c1' }, global: { plugins: [pinia] } })
    await flushPromises()
    const row = w.get('[data-testid=public-signal-s1]')
    expect(row.text()).toContain('EURUSD')
    expect(row.text()).toContain('Paula')
    expect(row.text()).toContain('lost')
    expect(row.text()).toContain('−5.00')
    expect(fetch.mock.calls[0][1]?.headers?.Authorization).toBeUndefined()
  })

  it('shows no past signals while the API keeps no public history (404)', async () => {
    routeFetch({})
    const w = mount(SignalHistory, { props: { channelId: 'c1' }, global: { plugins: [pinia] } })
    await flushPromises()
    expect(w.get('[data-testid=empty]').text()).toBe('No past signals yet.')
  })
})
