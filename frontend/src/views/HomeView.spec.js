import { describe, expect, it } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { createMemoryHistory } from 'vue-router'
import HomeView from './HomeView.vue'
import { createAppRouter } from '@/router'
import { deferred, jsonResponse, mockFetch } from '@/test/helpers'

async function mountHome() {
  const pinia = createPinia()
  setActivePinia(pinia)
  const router = createAppRouter(createMemoryHistory())
  router.push('/')
  await router.isReady()
  return mount(HomeView, { global: { plugins: [pinia, router] } })
}

describe('HomeView', () => {
  it('shows the tagline and a loading status, then ok with the checks', async () => {
    const pending = deferred()
    const fetch = mockFetch()
    fetch.mockReturnValueOnce(pending.promise)

    const wrapper = await mountHome()
    expect(wrapper.get('[data-test="tagline"]').text()).toContain('exactly once, within a second')
    expect(wrapper.find('[data-test="status-loading"]').exists()).toBe(true)
    expect(wrapper.get('[data-test="status-badge"]').text()).toBe('Checking…')

    pending.resolve(jsonResponse({ status: 'ok', checks: { nats: 'ok', mongodb: 'ok' } }))
    await flushPromises()

    expect(wrapper.find('[data-test="status-loading"]').exists()).toBe(false)
    expect(wrapper.get('[data-test="status-badge"]').text()).toBe('Operational')
    expect(wrapper.get('[data-test="status-ok"]').text()).toContain('ok')
    const checks = wrapper.get('[data-test="status-checks"]').text()
    expect(checks).toContain('nats')
    expect(checks).toContain('mongodb')
  })

  it('shows the API error message when /ready fails', async () => {
    mockFetch(
      jsonResponse(
        { error: { code: 'not_ready', message: 'NATS is not reachable', details: null } },
        { status: 503 },
      ),
    )

    const wrapper = await mountHome()
    await flushPromises()

    expect(wrapper.get('[data-test="status-badge"]').text()).toBe('Unavailable')
    expect(wrapper.get('[data-test="status-error"]').text()).toContain('NATS is not reachable')
  })

  it('refreshes on demand', async () => {
    const fetch = mockFetch(new TypeError('Failed to fetch'), jsonResponse({ status: 'ok' }))
    const wrapper = await mountHome()
    await flushPromises()
    expect(wrapper.find('[data-test="status-error"]').exists()).toBe(true)

    await wrapper.get('[data-test="status-refresh"]').trigger('click')
    await flushPromises()

    expect(fetch).toHaveBeenCalledTimes(2)
    expect(wrapper.find('[data-test="status-error"]').exists()).toBe(false)
    expect(wrapper.get('[data-test="status-badge"]').text()).toBe('Operational')
  })
})
