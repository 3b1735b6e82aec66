import { beforeEach, describe, expect, it } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import AccountsView from './AccountsView.vue'
import TradesView from './TradesView.vue'
import { useAuthStore } from '@/stores/auth'
import { jsonResponse, routeFetch } from '@/test/helpers'

const IQ = { id: 'b2', kind: 'iqoption', label: 'IQ', loginid: '7001', balance_type: 'real', balance: '10000', currency: 'USD', verified_at: null }

let pinia
beforeEach(() => {
  pinia = createPinia()
  setActivePinia(pinia)
  Object.assign(useAuthStore(), { user: { id: 'u1', account_type: 'subscriber' }, accessToken: 'a1', expiresAt: Date.now() + 600_000, restored: true })
})

const mountView = async (view) => {
  const wrapper = mount(view, { global: { plugins: [pinia], stubs: { RouterLink: { template: '<a><slot /></a>' } } } })
  await flushPromises()
  return wrapper
}
const body = (fetch, method, url) => JSON.parse(fetch.mock.calls.find(([u, init]) => u === url && init.method === method)[1].body)

describe('AccountsView', () => {
  it('links an IQ Option account by e-mail and password on the chosen balance in one step', async () => {
    const VERIFIED = { ...IQ, verified_at: '2026-01-01T00:00:00Z' }
    let listed = []
    const fetch = routeFetch({
      'GET /api/v1/broker-accounts': () => jsonResponse(listed),
      'POST /api/v1/broker-accounts': () => { listed = [VERIFIED]; return jsonResponse(VERIFIED, { status: 201 }) },
    })
    const w = await mountView(AccountsView)
    await w.get('[data-testid=account-kind-iqoption]').setValue(true)
    expect(w.find('[data-testid=account-token]').exists()).toBe(false)
    await w.get('[data-testid=account-login]').setValue('me@x.io')
    await w.get('[data-testid=account-password]').setValue('pw')
    await w.get('[data-testid=account-balance]').setValue('real')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(body(fetch, 'POST', '/api/v1/broker-accounts')).toEqual({
      kind: 'iqoption', label: 'IQ Option', credentials: { login: 'me@x.io', password: 'pw' }, balance_type: 'real',
    })
    // The API verified it before saving: no second call.
    expect(fetch.mock.calls.some(([u]) => u.endsWith('/verify'))).toBe(false)
    expect(w.get('[data-testid=account-kind]').text()).toContain('IQ Option · real')
    expect(w.find('[data-testid=verified]').exists()).toBe(true)
  })

  it("links by ssid and, when the broker refuses, shows its reason and saves nothing", async () => {
    const refusal = 'this IQ Option account uses two-factor sign-in, which the copier cannot answer; link it with an ssid instead'
    const fetch = routeFetch({
      'GET /api/v1/broker-accounts': [],
      'POST /api/v1/broker-accounts': () => jsonResponse({ error: { code: 'broker_rejected', message: refusal, details: { broker_code: 'two_factor_required' } } }, { status: 422 }),
    })
    const w = await mountView(AccountsView)
    await w.get('[data-testid=account-kind-iqoption]').setValue(true)
    await w.get('[data-testid=account-signin]').setValue('ssid')
    await w.get('[data-testid=account-ssid]').setValue('0123456789abcdef0123456789abcdef')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(body(fetch, 'POST', '/api/v1/broker-accounts').credentials).toEqual({ token: '0123456789abcdef0123456789abcdef' })
    expect(w.get('[data-testid=link-error]').text()).toBe(`Not linked — the broker said: ${refusal}`)
    expect(w.find('[data-testid=empty]').exists()).toBe(true)
  })

  it('shows a refused Deriv token above the form, not as a mistyped field', async () => {
    routeFetch({
      'GET /api/v1/broker-accounts': [],
      'POST /api/v1/broker-accounts': () => jsonResponse({ error: { code: 'broker_rejected', message: 'The token is invalid.', details: { broker_code: 'InvalidToken' } } }, { status: 422 }),
    })
    const w = await mountView(AccountsView)
    await w.get('[data-testid=account-token]').setValue('no-such-token')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(w.get('[data-testid=link-error]').text()).toBe('Not linked — the broker said: The token is invalid.')
    expect(w.get('[data-testid=account-token]').classes()).not.toContain('is-invalid')
  })

  it("shows the API's refusal of the credentials' shape above the list", async () => {
    const message = 'an IQ Option account takes an e-mail and a password, or an ssid'
    routeFetch({
      'GET /api/v1/broker-accounts': [],
      'POST /api/v1/broker-accounts': () => jsonResponse({ error: { code: 'invalid_request', message, details: [{ key: 'credentials', message: 'give an e-mail and a password, or an ssid' }] } }, { status: 400 }),
    })
    const w = await mountView(AccountsView)
    await w.get('[data-testid=account-kind-iqoption]').setValue(true)
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(w.get('[data-testid=link-error]').text()).toBe('give an e-mail and a password, or an ssid')
  })
})

describe('TradesView', () => {
  it('names the broker of every trade', async () => {
    const trade = (id, kind) => ({ order_id: id, signal_id: `s${id}`, channel_id: '', subscription_id: 'x', broker_kind: kind, state: 'placed', stake: '1', currency: 'USD', at: 1 })
    routeFetch({ 'GET /api/v1/orders?limit=200': [trade('1', 'iqoption'), trade('2', 'deriv'), trade('3', '')] })
    const w = await mountView(TradesView)
    expect(w.findAll('[data-testid=trade-broker]').map((c) => c.text())).toEqual(['IQ Option', 'Deriv', '—'])
    w.unmount()
  })
})
