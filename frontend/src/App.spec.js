import { describe, expect, it } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia } from 'pinia'
import { createMemoryHistory } from 'vue-router'
import App from './App.vue'
import { createAppRouter } from './router'
import { jsonResponse, mockFetch } from '@/test/helpers'

async function mountAt(path) {
  mockFetch(jsonResponse({ status: 'ok' }))
  const router = createAppRouter(createMemoryHistory())
  router.push(path)
  await router.isReady()
  const wrapper = mount(App, { global: { plugins: [createPinia(), router] } })
  await flushPromises()
  return { wrapper, router }
}

describe('App shell', () => {
  it('renders the navbar with brand and links', async () => {
    const { wrapper } = await mountAt('/')
    expect(wrapper.get('.navbar-brand').text()).toBe('Cloud Trade Copier')
    const links = wrapper.findAll('.nav-link').map((a) => a.text())
    expect(links).toEqual(['Home', 'Channels', 'Sign in'])
  })

  it('toggles the mobile menu and closes it on navigation', async () => {
    const { wrapper, router } = await mountAt('/')
    const menu = wrapper.get('#main-nav')
    expect(menu.classes()).not.toContain('show')
    await wrapper.get('.navbar-toggler').trigger('click')
    expect(menu.classes()).toContain('show')
    await router.push('/login')
    await flushPromises()
    expect(menu.classes()).not.toContain('show')
  })

  it('renders the not-found view for unknown paths', async () => {
    const { wrapper } = await mountAt('/nope')
    expect(wrapper.text()).toContain('Page not found')
    expect(wrapper.text()).toContain('/nope')
  })
})
