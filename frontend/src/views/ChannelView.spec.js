import { beforeEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { createMemoryHistory } from 'vue-router'
import ChannelView from './ChannelView.vue'
import { createAppRouter } from '@/router'
import { useAuthStore } from '@/stores/auth'
import { jsonResponse, routeFetch } from '@/test/helpers'

const CHANNEL = {
  id: 'c1', name: 'Alpha', description: 'R_100 calls', provider: { id: 'p1', display_name: 'Paula' },
  plan: { price: '10', currency: 'USD', period_days: 30 }, subscriber_count: 1,
  performance: { signals: 1, wins: 1, losses: 0, win_rate: 1 },
}
const SIGNAL = {
  signal_id: 's1', channel_id: 'c1', asset: 'R_100', direction: 'CALL', expiry_seconds: 15, stake: '1', created_at: 1,
  counts: { total: 1, placed: 1, rejected: 0, expired: 0, failed: 0, unknown: 0 }, won: 1, lost: 0, pnl: '0.95',
}
const ACCOUNT = { id: 'b1', label: 'Deriv', loginid: 'CR1', balance: '100', currency: 'USD', verified_at: 1 }

let pinia
beforeEach(() => {
  pinia = createPinia()
  setActivePinia(pinia)
})

function signIn(user) {
  Object.assign(useAuthStore(), { user, accessToken: 'a1', expiresAt: Date.now() + 600_000, restored: true })
}

async function mountChannel() {
  const router = createAppRouter(createMemoryHistory())
  router.push('/channels/c1')
  await router.isReady()
  const wrapper = mount(ChannelView, { props: { id: 'c1' }, global: { plugins: [pinia, router] } })
  await flushPromises()
  return wrapper
}

describe('ChannelView', () => {
  it('shows a visitor the channel and how to subscribe, no console', async () => {
    routeFetch({
      'POST /api/v1/auth/refresh': () => jsonResponse({ error: { code: 'unauthorized', message: 'no session' } }, { status: 401 }),
      'GET /api/v1/channels/c1': CHANNEL,
    })
    const w = await mountChannel()
    expect(w.get('[data-testid=channel-name]').text()).toBe('Alpha')
    expect(w.text()).toContain('Create a subscriber account')
    expect(w.find('[data-testid=signal-panel]').exists()).toBe(false)
    expect(w.find('[data-testid=settings-link]').exists()).toBe(false)
  })

  it("gives the owner the console: signal panel, history and subscribers", async () => {
    signIn({ id: 'p1', account_type: 'provider', display_name: 'Paula' })
    const fetch = routeFetch({
      'GET /api/v1/channels/c1': CHANNEL,
      'GET /api/v1/channels/c1/signals?limit=100': [SIGNAL],
      'GET /api/v1/channels/c1/subscribers': [{ subscription_id: 'x1', user: { display_name: 'Sam' }, since: '2026-01-01T00:00:00Z', expires_at: 2, status: 'active' }],
    })
    const w = await mountChannel()
    expect(w.find('[data-testid=signal-panel]').exists()).toBe(true)
    expect(w.find('[data-testid=settings-link]').exists()).toBe(true)
    expect(w.get('[data-testid=signal-history]').text()).toContain('CALL')
    expect(w.get('[data-testid=subscribers]').text()).toContain('Sam')
    expect(w.text()).not.toContain('Copy this channel')
    const signed = fetch.mock.calls.filter(([url]) => url.includes('/signals') || url.includes('/subscribers'))
    expect(signed.every(([, init]) => init.headers.Authorization === 'Bearer a1')).toBe(true)
    w.unmount()
  })

  it('lets a subscriber with a verified account subscribe', async () => {
    signIn({ id: 'u1', account_type: 'subscriber', display_name: 'Sam' })
    const fetch = routeFetch({
      'GET /api/v1/channels/c1': CHANNEL,
      'GET /api/v1/broker-accounts': [ACCOUNT],
      'GET /api/v1/subscriptions': [],
      'POST /api/v1/channels/c1/subscriptions': { id: 'sub1', channel_id: 'c1', status: 'active' },
    })
    const w = await mountChannel()
    expect(w.find('[data-testid=signal-panel]').exists()).toBe(false)
    expect(w.get('#broker-account').text()).toContain('Deriv (CR1')
    await w.get('[data-testid=risk-submit]').trigger('submit')
    await flushPromises()
    const [, init] = fetch.mock.calls.find(([url, i]) => i.method === 'POST' && url.endsWith('/subscriptions'))
    expect(JSON.parse(init.body)).toMatchObject({ broker_account_id: 'b1', stake_mode: 'multiplier' })
    expect(w.get('[data-testid=subscribed]').text()).toContain('You copy this channel (active)')
  })

  it('sends a subscriber to the checkout page of a paid plan', async () => {
    signIn({ id: 'u1', account_type: 'subscriber', display_name: 'Sam' })
    const fetch = routeFetch({
      'GET /api/v1/channels/c1': CHANNEL,
      'GET /api/v1/broker-accounts': [ACCOUNT],
      'GET /api/v1/subscriptions': [],
      'POST /api/v1/channels/c1/subscriptions': () => jsonResponse({ error: { code: 'payment_required', message: 'paid: use checkout' } }, { status: 402 }),
      'POST /api/v1/channels/c1/checkout': { checkout_url: 'http://pay.example.test/c/pay/cs_1' },
    })
    const assign = vi.fn()
    vi.stubGlobal('location', { ...window.location, assign })
    try {
      const w = await mountChannel()
      expect(w.get('[data-testid=paid-plan]').text()).toContain('10.00 USD every 30 days')
      expect(w.get('[data-testid=risk-submit]').text()).toBe('Subscribe and pay')
      await w.get('[data-testid=risk-submit]').trigger('submit')
      await flushPromises()
      const [, init] = fetch.mock.calls.find(([url, i]) => i.method === 'POST' && url.endsWith('/checkout'))
      expect(JSON.parse(init.body)).toMatchObject({ broker_account_id: 'b1' })
      expect(assign).toHaveBeenCalledWith('http://pay.example.test/c/pay/cs_1')
    } finally {
      vi.unstubAllGlobals()
    }
  })

  it('says so when the channel does not exist', async () => {
    routeFetch({ 'POST /api/v1/auth/refresh': () => jsonResponse({ error: { code: 'unauthorized', message: 'no' } }, { status: 401 }) })
    const w = await mountChannel()
    expect(w.text()).toContain('This channel does not exist (or was deleted).')
  })

  it("reads the owner's headline again while the page is open, so new subscribers show", async () => {
    vi.useFakeTimers()
    try {
      signIn({ id: 'p1', account_type: 'provider', display_name: 'Paula' })
      let subscribers = 1
      routeFetch({
        'GET /api/v1/channels/c1': () => jsonResponse({ ...CHANNEL, subscriber_count: subscribers }),
        'GET /api/v1/channels/c1/signals?limit=100': [SIGNAL],
        'GET /api/v1/channels/c1/subscribers': [],
      })
      const w = await mountChannel()
      expect(w.get('[data-testid=count-subscribers]').text()).toBe('1')
      subscribers = 2
      await vi.advanceTimersByTimeAsync(15_000)
      await flushPromises()
      expect(w.get('[data-testid=count-subscribers]').text()).toBe('2')
      w.unmount()
    } finally {
      vi.useRealTimers()
    }
  })
})
