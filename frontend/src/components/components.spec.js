import { beforeEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import FanoutProgress from './FanoutProgress.vue'
import RiskForm from './RiskForm.vue'
import SignalPanel from './SignalPanel.vue'
import { useLiveStore } from '@/stores/live'

beforeEach(() => setActivePinia(createPinia()))

describe('FanoutProgress', () => {
  it('shows each outcome of the total and the time to the last placement', () => {
    const w = mount(FanoutProgress, {
      props: { progress: { counts: { total: 4, placed: 3, rejected: 1, expired: 0, failed: 0, unknown: 0 }, done: true, latency_ms: { last_placed: 412 } } },
    })
    expect(w.get('[data-testid=count-placed]').text()).toBe('3 placed')
    expect(w.get('[data-testid=count-rejected]').text()).toBe('1 rejected')
    expect(w.get('[data-testid=count-total]').text()).toBe('of 4')
    expect(w.get('[data-testid=last-placed]').text()).toBe('last placement 412 ms')
    expect(w.findAll('.progress')[0].attributes('style')).toContain('width: 75%')
    expect(w.find('[data-testid=fanout-brokers]').exists()).toBe(false)
  })

  it('splits the counts by broker when the signal reached several', () => {
    const w = mount(FanoutProgress, {
      props: { progress: { counts: { total: 3, placed: 2, rejected: 1 }, brokers: { deriv: { placed: 1 }, iqoption: { placed: 1, rejected: 1 } } } },
    })
    expect(w.get('[data-testid=broker-deriv]').text()).toBe('Deriv: 1 placed')
    expect(w.get('[data-testid=broker-iqoption]').text()).toBe('IQ Option: 1 placed, 1 rejected')
  })
})

describe('RiskForm', () => {
  it('refuses what the API would refuse, beside the field', async () => {
    const w = mount(RiskForm)
    await w.get('[data-testid=risk-stake]').setValue('500')
    await w.get('form').trigger('submit')
    expect(w.emitted('submit')).toBeUndefined()
    expect(w.text()).toContain('Stake must be at most 100')
  })

  it('emits the API body when valid, and shows server errors', async () => {
    const w = mount(RiskForm, { props: { serverErrors: { max_stake: 'from the API' } } })
    expect(w.text()).toContain('from the API')
    await w.get('form').trigger('submit')
    expect(w.emitted('submit')[0][0]).toMatchObject({ stake_mode: 'multiplier', stake: '1', max_stake: '10' })
  })

  it('previews the stake from the balance and warns of a max stake above the loss limit', async () => {
    const w = mount(RiskForm, { props: { context: { balance: '10000', currency: 'USD', kind: 'iqoption' } } })
    await w.get('#stake-mode').setValue('percent')
    await w.get('[data-testid=risk-stake]').setValue('1')
    await w.get('[data-testid=risk-max-stake]').setValue('50')
    expect(w.get('[data-testid=stake-preview]').text()).toContain('1 % of 10,000.00 = 100.00 → capped at 50.00')
    expect(w.get('[data-testid=stake-preview]').text()).toContain("IQ Option's minimum is 1.00")
    await w.get('#risk-loss').setValue('30')
    expect(w.get('[data-testid=risk-warning]').text()).toContain('exceeds your daily loss limit (30.00)')
    await w.get('[data-testid=risk-directions]').setValue('PUT')
    await w.get('[data-testid=risk-reverse]').setValue(true)
    await w.get('form').trigger('submit')
    expect(w.emitted('submit')[0][0]).toMatchObject({ directions: ['PUT'], reverse: true, daily_loss_limit: '30' })
  })
})

describe('SignalPanel', () => {
  function mounted() {
    const live = useLiveStore()
    live.status = 'open'
    live.sendSignal = vi.fn().mockResolvedValue({ signal_id: 's1' })
    const w = mount(SignalPanel, { props: { channelId: 'c1' }, attachTo: document.body })
    return { w, live }
  }

  const press = async (key) => {
    window.dispatchEvent(new KeyboardEvent('keydown', { key, cancelable: true }))
    await flushPromises()
  }
  // A click on CALL / PUT, then on the confirmation's Send.
  const clickSend = async (w, which = 'call') => {
    await w.get(`[data-testid=${which}]`).trigger('click')
    await w.get('[data-testid=confirm-send]').trigger('click')
    await flushPromises()
  }

  it('shows the contract, the stake and the audience before anything is sent', async () => {
    const live = useLiveStore()
    live.status = 'open'
    live.sendSignal = vi.fn().mockResolvedValue({ signal_id: 's1' })
    const w = mount(SignalPanel, { props: { channelId: 'c1', channelName: 'Alpha', subscribers: 3 }, attachTo: document.body })
    await w.get('[data-testid=call]').trigger('click')
    expect(live.sendSignal).not.toHaveBeenCalled()
    const shown = w.get('[data-testid=confirm-signal]').text()
    expect(shown).toContain('CALL R_100')
    expect(shown).toContain('15 s')
    expect(w.get('[data-testid=confirm-stake]').text()).toBe('1')
    expect(w.get('[data-testid=confirm-audience]').text()).toBe('3 subscribers of Alpha')
    await w.get('[data-testid=confirm-cancel]').trigger('click')
    expect(w.find('[data-testid=confirm-signal]').exists()).toBe(false)
    expect(live.sendSignal).not.toHaveBeenCalled()
    await clickSend(w)
    expect(live.sendSignal).toHaveBeenLastCalledWith({
      channel_id: 'c1', asset: 'R_100', direction: 'CALL', expiry_seconds: 15, stake: '1', client_id: expect.stringMatching(/^web-[0-9a-f]{32}$/),
    })
    w.unmount()
  })

  it('a stray key while disarmed sends nothing and says how to send; armed, a key asks first', async () => {
    const { w, live } = mounted()
    await press('c')
    await press('Enter')
    expect(live.sendSignal).not.toHaveBeenCalled()
    expect(w.find('[data-testid=confirm-signal]').exists()).toBe(false)
    expect(w.get('[data-testid=arm-hint]').text()).toBe('Arm the panel to send with the keyboard')

    await w.get('[data-testid=arm-toggle]').setValue(true)
    expect(w.get('[data-testid=arm-state]').text()).toBe('Armed')
    expect(w.find('[data-testid=arm-hint]').exists()).toBe(false)
    await press('p')
    expect(w.get('[data-testid=confirm-signal]').text()).toContain('PUT R_100')
    await press('Escape')
    expect(w.find('[data-testid=confirm-signal]').exists()).toBe(false)
    await press('p')
    await press('Enter')
    expect(live.sendSignal).toHaveBeenCalledTimes(1)
    expect(live.sendSignal).toHaveBeenLastCalledWith(expect.objectContaining({ direction: 'PUT' }))
    expect(w.get('[data-testid=last-signal]').text()).toContain('PUT R_100')
    w.unmount()
  })

  it('disarms when the tab is hidden, closing a confirmation a key opened', async () => {
    const { w, live } = mounted()
    await w.get('[data-testid=arm-toggle]').setValue(true)
    await press('c')
    expect(w.find('[data-testid=confirm-signal]').exists()).toBe(true)
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true })
    document.dispatchEvent(new Event('visibilitychange'))
    Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true })
    await flushPromises()
    expect(w.get('[data-testid=arm-state]').text()).toBe('Disarmed')
    expect(w.find('[data-testid=confirm-signal]').exists()).toBe(false)
    await press('Enter')
    await press('c')
    expect(live.sendSignal).not.toHaveBeenCalled()
    w.unmount()
  })

  it('picks assets by search and applies presets; disables sending when offline or invalid', async () => {
    const { w, live } = mounted()
    await w.get('[data-testid=asset-search]').setValue('eur')
    await w.get('[data-testid=asset-search]').trigger('keydown', { key: 'Enter' })
    await w.findAll('button').find((b) => b.text() === '5 min').trigger('click')
    await w.findAll('button').find((b) => b.text() === '25').trigger('click')
    await clickSend(w)
    expect(live.sendSignal).toHaveBeenLastCalledWith(expect.objectContaining({ asset: 'frxEURUSD', expiry_seconds: 300, stake: '25' }))
    await flushPromises()
    await w.get('[data-testid=stake]').setValue('0.1')
    expect(w.get('[data-testid=call]').attributes('disabled')).toBeDefined()
    await w.get('[data-testid=stake]').setValue('1')
    live.status = 'reconnecting'
    await flushPromises()
    expect(w.get('[data-testid=put]').attributes('disabled')).toBeDefined()
    w.unmount()
  })

  it("shows the server's refusal", async () => {
    const { w, live } = mounted()
    live.sendSignal = vi.fn().mockRejectedValue(new Error('only the owner and its delegates may signal'))
    await clickSend(w)
    expect(w.get('[data-testid=signal-error]').text()).toContain('delegates may signal')
    w.unmount()
  })

  it('retries a failed signal under its client_id, and sends the next one under a new one', async () => {
    const { w, live } = mounted()
    live.sendSignal = vi.fn().mockRejectedValueOnce(new Error('no answer from the server within 10 s'))
      .mockResolvedValueOnce({ signal_id: 's1', duplicate: true })
      .mockResolvedValue({ signal_id: 's2' })
    const clientIds = async () => {
      await clickSend(w)
      return live.sendSignal.mock.lastCall[0].client_id
    }
    const failed = await clientIds()
    expect(await clientIds()).toBe(failed) // the retry: the API answers with the first signal
    expect(w.get('[data-testid=duplicate]').text()).toContain('not a second one')
    const next = await clientIds()
    expect(next).not.toBe(failed) // sent again on purpose after it was accepted
    live.sendSignal = vi.fn().mockRejectedValueOnce(new Error('down')).mockResolvedValue({ signal_id: 's3' })
    const lost = await clientIds()
    await w.get('[data-testid=stake]').setValue('2')
    expect(await clientIds()).not.toBe(lost) // another signal, not a retry
    w.unmount()
  })
})
