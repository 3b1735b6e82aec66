import { beforeEach, describe, expect, it } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { createMemoryHistory } from 'vue-router'
import TradesView from './TradesView.vue'
import { createAppRouter } from '@/router'
import { useAuthStore } from '@/stores/auth'
import { useLiveStore } from '@/stores/live'
import { routeFetch } from '@/test/helpers'

const trade = (id, fields = {}) => ({
  order_id: `${id}.sub1`, signal_id: id, channel_id: 'c1', subscription_id: 'sub1', broker_kind: 'deriv',
  state: 'placed', reason: null, asset: 'R_100', direction: 'CALL', expiry_seconds: 300, expiry_at: null,
  stake: '2', currency: 'USD', contract_id: `9${id}`, buy_price: '2', payout: '3.90', entry_spot: '100.25',
  exit_spot: null, outcome: null, profit: null, latency_ms: 85, signal_created_at: 1, at: 1_800_000_000, settled_at: null,
  ...fields,
})

let pinia
beforeEach(() => {
  pinia = createPinia()
  setActivePinia(pinia)
  Object.assign(useAuthStore(), { user: { id: 'u1', account_type: 'subscriber' }, accessToken: 'a1', expiresAt: Date.now() + 600_000, restored: true })
})

async function mountAt(path) {
  const router = createAppRouter(createMemoryHistory())
  router.push(path)
  await router.isReady()
  const wrapper = mount(TradesView, { global: { plugins: [pinia, router] } })
  await flushPromises()
  return { wrapper, router }
}

describe('TradesView', () => {
  it('shows each trade in full and merges the trades pushed meanwhile', async () => {
    routeFetch({
      'GET /api/v1/orders?limit=200': [trade('B'), trade('A', { outcome: 'won', profit: '1.90', exit_spot: '100.31' })],
      'GET /api/v1/subscriptions': [],
    })
    const { wrapper } = await mountAt('/trades')
    const cells = (id) => wrapper.findAll(`[data-testid=${id}]`).map((c) => c.text())
    expect(cells('trade-asset')).toEqual(['R_100', 'R_100'])
    expect(cells('trade-expiry')).toEqual(['5 min', '5 min'])
    expect(cells('trade-spots')).toEqual(['100.25 → …', '100.25 → 100.31'])
    expect(cells('trade-contract')).toEqual(['9B', '9A'])
    expect(cells('trade-delay')).toEqual(['85 ms', '85 ms'])
    // Every cell carries its label for the phone's cards.
    expect(wrapper.findAll('[data-testid=trades] tbody tr:first-child td').every((td) => td.attributes('data-label'))).toBe(true)

    // A settlement and a new trade pushed over the WebSocket show at once.
    useLiveStore().trades = { 'B.sub1': { ...trade('B'), at: null, outcome: 'lost', profit: '-2', exit_spot: '100.20' }, 'C.sub1': trade('C') }
    await flushPromises()
    expect(cells('trade-contract')).toEqual(['9C', '9B', '9A'])
    expect(cells('trade-outcome')).toEqual(['open…', 'lost', 'won'])
    expect(cells('trade-spots')[1]).toBe('100.25 → 100.20')

    await wrapper.findAll('[data-testid=trade-toggle]')[1].trigger('click')
    expect(wrapper.get('[data-testid=trade-detail]').text()).toContain('B.sub1')
    wrapper.unmount()
  })

  it('keeps the filters in the URL and asks the API and the export with them', async () => {
    const fetch = routeFetch({
      'GET /api/v1/orders?outcome=won&limit=200': [trade('A', { outcome: 'won' })],
      'GET /api/v1/orders?channel_id=c1&outcome=won&since=2026-12-01&limit=200': [],
      'GET /api/v1/subscriptions': [{ id: 's1', channel_id: 'c1' }],
      'GET /api/v1/channels/c1': { id: 'c1', name: 'Alpha' },
    })
    const { wrapper, router } = await mountAt('/trades?outcome=won')
    expect(wrapper.get('[data-testid=filter-outcome]').element.value).toBe('won')
    expect(wrapper.get('[data-testid=export-csv]').attributes('href')).toContain('/api/v1/orders.csv?outcome=won&limit=200')
    await wrapper.get('[data-testid=filter-channel]').setValue('c1')
    await flushPromises()
    await wrapper.get('[data-testid=filter-from]').setValue('2026-12-01')
    await flushPromises()
    expect(router.currentRoute.value.query).toEqual({ channel: 'c1', outcome: 'won', from: '2026-12-01' })
    expect(fetch.mock.calls.map(([u]) => u)).toContain('/api/v1/orders?channel_id=c1&outcome=won&since=2026-12-01&limit=200')
    expect(wrapper.text()).toContain('No trades match these filters.')
    wrapper.unmount()
  })
})
