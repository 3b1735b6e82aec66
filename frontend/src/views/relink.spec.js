import { beforeEach, describe, expect, it } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { createMemoryHistory } from 'vue-router'
import AccountsView from './AccountsView.vue'
import SubscriptionsView from './SubscriptionsView.vue'
import TradesView from './TradesView.vue'
import RelinkBanner from '@/components/RelinkBanner.vue'
import RelinkForm from '@/components/RelinkForm.vue'
import { createAppRouter } from '@/router'
import { useAuthStore } from '@/stores/auth'
import { jsonResponse, routeFetch } from '@/test/helpers'

const REASON = 'InvalidToken: The token is invalid.'
const PAUSE = `broker account needs re-linking: ${REASON}`
const ACTIVE = { id: 'b1', kind: 'deriv', label: 'Main', loginid: 'CR1', balance: '100', currency: 'USD', verified_at: '2026-01-01T00:00:00Z', status: 'active', relink_reason: '', relink_since: null }
const REFUSED = { ...ACTIVE, status: 'needs_relink', relink_reason: REASON, relink_since: '2026-01-02T00:00:00Z' }
const SUB = { id: 's1', channel_id: 'c1', broker_account_id: 'b1', stake_mode: 'fixed', stake: '1', max_stake: '5', assets: [], expires_at: '2027-01-01T00:00:00Z' }

let pinia
beforeEach(() => {
  pinia = createPinia()
  setActivePinia(pinia)
  Object.assign(useAuthStore(), { user: { id: 'u1', display_name: 'Sam', account_type: 'subscriber' }, accessToken: 'a1', expiresAt: Date.now() + 600_000, restored: true })
})

async function mountAt(component, path, props = {}) {
  const router = createAppRouter(createMemoryHistory())
  router.push(path)
  await router.isReady()
  const wrapper = mount(component, { props, global: { plugins: [pinia, router] } })
  await flushPromises()
  return { wrapper, router }
}

describe('RelinkForm', () => {
  it('sends the new token and says when the account is active again', async () => {
    const fetch = routeFetch({ 'PUT /api/v1/broker-accounts/b1/credentials': ACTIVE })
    const { wrapper } = await mountAt(RelinkForm, '/accounts', { account: REFUSED })
    await wrapper.get('[data-testid=relink-token]').setValue(' new-token ')
    await wrapper.get('form').trigger('submit')
    await flushPromises()
    const [, init] = fetch.mock.calls.find(([url]) => url.endsWith('/credentials'))
    expect(init.method).toBe('PUT')
    expect(JSON.parse(init.body)).toEqual({ credentials: { token: 'new-token' } })
    expect(wrapper.emitted('relinked')[0][0].status).toBe('active')
  })

  it("shows the broker's refusal in plain words", async () => {
    routeFetch({
      'PUT /api/v1/broker-accounts/b1/credentials': () => jsonResponse({ error: { code: 'broker_rejected', message: 'The token is invalid.' } }, { status: 422 }),
    })
    const { wrapper } = await mountAt(RelinkForm, '/accounts', { account: REFUSED })
    await wrapper.get('[data-testid=relink-token]').setValue('old')
    await wrapper.get('form').trigger('submit')
    await flushPromises()
    expect(wrapper.text()).toContain('The token is invalid.')  // beside the token it refused
    expect(wrapper.emitted('relinked')).toBeUndefined()
  })

  it('asks an IQ Option account for its login and password', async () => {
    const { wrapper } = await mountAt(RelinkForm, '/accounts', { account: { ...REFUSED, kind: 'iqoption' } })
    expect(wrapper.find('[data-testid=relink-login]').exists()).toBe(true)
    expect(wrapper.find('[data-testid=relink-password]').exists()).toBe(true)
    expect(wrapper.find('[data-testid=relink-token]').exists()).toBe(false)
  })
})

describe('Accounts that need re-linking', () => {
  it('are badged with the reason and a re-link form; the others are not', async () => {
    routeFetch({ 'GET /api/v1/broker-accounts': [REFUSED, { ...ACTIVE, id: 'b2', label: 'Spare' }] })
    const { wrapper } = await mountAt(AccountsView, '/accounts')
    const refused = wrapper.get('[data-testid=account-b1]')
    expect(refused.get('[data-testid=needs-relink]').text()).toBe('Needs re-linking')
    expect(refused.get('[data-testid=relink-reason]').text()).toBe(REASON)
    expect(refused.find('[data-testid=relink-form]').exists()).toBe(true)
    const fine = wrapper.get('[data-testid=account-b2]')
    expect(fine.find('[data-testid=needs-relink]').exists()).toBe(false)
    expect(fine.find('[data-testid=relink-form]').exists()).toBe(false)
  })

  it('raise a banner for the subscriber, gone once none needs it', async () => {
    routeFetch({ 'GET /api/v1/broker-accounts': [REFUSED] })
    const { wrapper } = await mountAt(RelinkBanner, '/trades')
    const banner = wrapper.get('[data-testid=relink-banner]')
    expect(banner.text()).toContain('Broker account Main needs re-linking')
    expect(banner.text()).toContain(REASON)
    expect(banner.get('a').attributes('href')).toBe('/accounts')

    routeFetch({ 'GET /api/v1/broker-accounts': [ACTIVE] })
    const again = await mountAt(RelinkBanner, '/trades')
    expect(again.wrapper.find('[data-testid=relink-banner]').exists()).toBe(false)
  })

  it("show their pause reason on the subscription, which only re-linking lifts", async () => {
    routeFetch({
      'GET /api/v1/subscriptions': [
        { ...SUB, paused: true, paused_reason: PAUSE, status: 'paused' },
        { ...SUB, id: 's2', paused: true, paused_reason: '', status: 'paused' },
      ],
      'GET /api/v1/channels/c1': { id: 'c1', name: 'Alpha' },
    })
    const { wrapper } = await mountAt(SubscriptionsView, '/subscriptions')
    const paused = wrapper.get('[data-testid=subscription-s1]')
    expect(paused.get('[data-testid=paused-reason]').text()).toContain(PAUSE)
    expect(paused.find('[data-testid=pause]').exists()).toBe(false)
    const own = wrapper.get('[data-testid=subscription-s2]')
    expect(own.find('[data-testid=paused-reason]').exists()).toBe(false)
    expect(own.get('[data-testid=pause]').text()).toBe('Resume')
  })

  it("show the router's rejection reason on the trade, with the way out", async () => {
    routeFetch({
      'GET /api/v1/orders?limit=200': [{ order_id: 'o1', signal_id: 'g1', channel_id: 'c1', state: 'rejected', reason: PAUSE, at: 1 }],
      'GET /api/v1/channels/c1': { id: 'c1', name: 'Alpha' },
    })
    const { wrapper } = await mountAt(TradesView, '/trades')
    const trade = wrapper.get('[data-testid=trade-g1]')
    expect(trade.get('[data-testid=trade-reason]').text()).toBe(PAUSE)
    expect(trade.text()).toContain('Re-link')
    wrapper.unmount()
  })
})
