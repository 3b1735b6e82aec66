import { describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia } from 'pinia'
import { createMemoryHistory } from 'vue-router'
import LoginView from './LoginView.vue'
import { createAppRouter } from '@/router'
import { jsonResponse, mockFetch } from '@/test/helpers'

async function mountAt(path) {
  const router = createAppRouter(createMemoryHistory())
  router.push(path)
  await router.isReady()
  return { wrapper: mount(LoginView, { global: { plugins: [createPinia(), router] } }), router }
}

describe('LoginView', () => {
  it("shows the API's error beside the field it names", async () => {
    const fetch = mockFetch(jsonResponse({ error: { code: 'validation_error', message: 'Expected `str` of length >= 8 - at `$.password`', details: null } }, { status: 400 }))
    const { wrapper } = await mountAt('/signup?as=provider')
    await wrapper.get('#display-name').setValue('Paula')
    await wrapper.get('#login-email').setValue('p@example.test')
    await wrapper.get('#login-password').setValue('short')
    await wrapper.get('form').trigger('submit')
    await flushPromises()
    expect(JSON.parse(fetch.mock.calls[0][1].body)).toMatchObject({ account_type: 'provider', display_name: 'Paula' })
    expect(wrapper.get('[data-testid=password-error]').text()).toBe('Expected `str` of length >= 8')
    expect(wrapper.get('#login-password').classes()).toContain('is-invalid')
  })

  it('signs in and goes where the user was headed', async () => {
    mockFetch(
      jsonResponse({ access_token: 'a', token_type: 'Bearer', expires_in: 900, refresh_token: 'r' }),
      jsonResponse({ id: 'u', account_type: 'subscriber', display_name: 'S', is_admin: false }),
    )
    const { wrapper, router } = await mountAt('/login?next=/trades')
    await wrapper.get('#login-email').setValue('s@example.test')
    await wrapper.get('#login-password').setValue('long enough')
    await wrapper.get('form').trigger('submit')
    await vi.waitFor(() => expect(router.currentRoute.value.path).toBe('/trades'))
  })

  it('shows errors it cannot pin to a field above the button', async () => {
    mockFetch(jsonResponse({ error: { code: 'rate_limited', message: 'too many attempts, retry in 30 s' } }, { status: 429 }))
    const { wrapper } = await mountAt('/login')
    await wrapper.get('form').trigger('submit')
    await flushPromises()
    expect(wrapper.get('[data-test=login-notice]').text()).toContain('too many attempts')
  })
})
