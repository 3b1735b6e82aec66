import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import ToastStack from './ToastStack.vue'
import { useLiveStore } from '@/stores/live'

beforeEach(() => {
  setActivePinia(createPinia())
  vi.useFakeTimers()
})
afterEach(() => vi.useRealTimers())

describe('ToastStack', () => {
  it('announces results politely and refusals assertively, and closes on request', async () => {
    const live = useLiveStore()
    const w = mount(ToastStack)
    live.toast({ kind: 'won', tone: 'success', text: 'EURUSD CALL won +8.50 USD', profit: 8.5 })
    live.toast({ kind: 'refused', tone: 'warning', text: 'EURUSD CALL 10.00 rejected at Deriv: market is closed' })
    await w.vm.$nextTick()
    const toasts = w.findAll('[data-testid=toast]')
    expect(toasts.map((t) => [t.attributes('role'), t.attributes('aria-live')])).toEqual([['status', 'polite'], ['alert', 'assertive']])
    expect(toasts[1].get('[data-testid=toast-text]').text()).toBe('EURUSD CALL 10.00 rejected at Deriv: market is closed')
    await toasts[0].get('button[aria-label=Close]').trigger('click')
    expect(w.findAll('[data-testid=toast]')).toHaveLength(1)
  })

  it('shows a burst as one summary', async () => {
    const live = useLiveStore()
    const w = mount(ToastStack)
    for (let i = 0; i < 5; i += 1) live.toast({ kind: 'placed', tone: 'primary', text: `t${i}` })
    await w.vm.$nextTick()
    expect(w.findAll('[data-testid=toast]')).toHaveLength(1)
    expect(w.get('[data-testid=toast]').text()).toContain('5 trades placed')
  })
})
