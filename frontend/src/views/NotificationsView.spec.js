import { beforeEach, describe, expect, it } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import NotificationsView from './NotificationsView.vue'
import { useAuthStore } from '@/stores/auth'
import { unread } from '@/lib/notifications'
import { jsonResponse, routeFetch } from '@/test/helpers'

const PREFS = {
  defaults: { in_app: true, email: false, telegram: false },
  overrides: {},
  effective: {},
  digest: 'off',
  kinds: ['placed', 'lost'],
  channels: ['in_app', 'email', 'telegram'],
  email: 'me@x.io',
  telegram_linked: false,
  telegram_bot: 'copier_sim_bot',
}
const ITEM = { id: 'n1', kind: 'placed', title: 'Trade placed: R_100 CALL', body: 'placed for 2.00 USD', at: 1_700_000_000, read: false }

let pinia
beforeEach(() => {
  pinia = createPinia()
  setActivePinia(pinia)
  Object.assign(useAuthStore(), { user: { id: 'u1', account_type: 'subscriber' }, accessToken: 'a1', expiresAt: Date.now() + 600_000, restored: true })
})

const body = (fetch, method, url) => JSON.parse(fetch.mock.calls.find(([u, init]) => u.startsWith(url) && init.method === method)[1].body)

describe('NotificationsView', () => {
  it('saves a channel default and a per-event override, and marks the list read', async () => {
    let listed = { items: [ITEM], unread: 1 }
    const fetch = routeFetch({
      'GET /api/v1/me/notifications/preferences': () => jsonResponse(PREFS),
      'PUT /api/v1/me/notifications/preferences': () => jsonResponse({ ...PREFS, defaults: { ...PREFS.defaults, telegram: true }, overrides: { lost: { email: true } } }),
      'GET /api/v1/me/notifications?limit=50': () => jsonResponse(listed),
      'POST /api/v1/me/notifications/read': () => { listed = { items: [{ ...ITEM, read: true }], unread: 0 }; return jsonResponse({ unread: 0 }) },
    })
    const w = mount(NotificationsView, { global: { plugins: [pinia] } })
    await flushPromises()
    expect(w.get('[data-testid=cell-lost-email]').text()).toBe('Off · default')
    expect(w.get('[data-testid=unread-count]').text()).toBe('1 unread')
    expect(unread.value).toBe(1)

    await w.get('[data-testid=default-telegram]').setValue(true)
    await w.get('[data-testid=cell-lost-email]').trigger('click')
    expect(w.get('[data-testid=cell-lost-email]').text()).toBe('On')
    await w.get('[data-testid=save-prefs]').trigger('click')
    await flushPromises()
    expect(body(fetch, 'PUT', '/api/v1/me/notifications/preferences')).toEqual({
      defaults: { in_app: true, email: false, telegram: true },
      overrides: { lost: { email: true } },
      digest: 'off',
    })
    expect(w.find('[data-testid=prefs-saved]').exists()).toBe(true)

    await w.get('[data-testid=mark-all-read]').trigger('click')
    await flushPromises()
    expect(body(fetch, 'POST', '/api/v1/me/notifications/read')).toEqual({ ids: [] })
    expect(w.get('[data-testid=unread-count]').text()).toBe('0 unread')
    expect(unread.value).toBe(0)
  })

  it('shows the Telegram code and the bot link', async () => {
    routeFetch({
      'GET /api/v1/me/notifications/preferences': () => jsonResponse(PREFS),
      'GET /api/v1/me/notifications?limit=50': () => jsonResponse({ items: [], unread: 0 }),
      'POST /api/v1/me/notifications/telegram/link': () => jsonResponse({ code: 'AB23CD45', expires_at: 1, bot: 'copier_sim_bot', url: 'https://t.me/copier_sim_bot?start=AB23CD45', command: '/start AB23CD45' }, { status: 201 }),
    })
    const w = mount(NotificationsView, { global: { plugins: [pinia] } })
    await flushPromises()
    await w.get('[data-testid=telegram-link]').trigger('click')
    await flushPromises()
    expect(w.get('[data-testid=telegram-command]').text()).toBe('/start AB23CD45')
    expect(w.get('[data-testid=telegram-open]').attributes('href')).toBe('https://t.me/copier_sim_bot?start=AB23CD45')
    w.unmount()
  })
})
