import { describe, expect, it } from 'vitest'
import { BURST_MS, MAX_TOASTS, addToast, mergeTrade, phase, toastFor } from './toasts'

const placed = {
  order_id: 'o1', signal_id: 's1', broker_kind: 'deriv', state: 'placed', asset: 'EURUSD', direction: 'CALL',
  stake: '10.00', currency: 'USD', at: 1700000010.5, outcome: null, profit: null, settled_at: null,
}
const settled = { ...placed, at: null, outcome: 'won', profit: '8.50', settled_at: 1700000070 }

describe('trades merged from pushes', () => {
  it('keeps what the placement said when the settlement does not repeat it', () => {
    const merged = mergeTrade(mergeTrade(undefined, placed), settled)
    expect(merged).toMatchObject({ state: 'placed', at: 1700000010.5, outcome: 'won', profit: '8.50' })
    expect(phase(merged)).toBe('won')
  })

  it('a late redelivery of the placement does not undo the settlement', () => {
    const merged = mergeTrade(mergeTrade(placed, settled), placed)
    expect(phase(merged)).toBe('won')
  })
})

describe('what a push announces', () => {
  it('a placement, with the contract, the stake and the broker', () => {
    expect(toastFor(undefined, placed)).toMatchObject({ kind: 'placed', text: 'EURUSD CALL 10.00 placed at Deriv' })
  })

  it('a refusal, with its reason', () => {
    const rejected = { ...placed, state: 'rejected', reason: 'market is closed' }
    expect(toastFor(undefined, rejected)).toMatchObject({
      kind: 'refused', tone: 'warning', text: 'EURUSD CALL 10.00 rejected at Deriv: market is closed',
    })
  })

  it('a result, with the P&L', () => {
    expect(toastFor(placed, mergeTrade(placed, settled)).text).toBe('EURUSD CALL won +8.50 USD')
    const lost = mergeTrade(placed, { ...settled, outcome: 'lost', profit: '-10.00' })
    expect(toastFor(placed, lost)).toMatchObject({ kind: 'lost', tone: 'danger', text: 'EURUSD CALL lost −10.00 USD' })
  })

  it('nothing for a phase already seen or a pending order', () => {
    expect(toastFor(placed, mergeTrade(placed, placed))).toBeNull()
    expect(toastFor(undefined, { ...placed, state: 'pending' })).toBeNull()
  })
})

describe('a burst collapses', () => {
  const add = (list, toast, now) => addToast(list, toast, now).toasts

  it('into one summary per kind: "12 trades placed"', () => {
    let toasts = []
    for (let i = 0; i < 12; i += 1) toasts = add(toasts, toastFor(undefined, { ...placed, order_id: `o${i}` }), 1000 + i * 10)
    expect(toasts).toHaveLength(1)
    expect(toasts[0]).toMatchObject({ kind: 'placed', count: 12, text: '12 trades placed' })
  })

  it('with the sum of the P&L for results, beside the other kinds', () => {
    let toasts = add([], toastFor(undefined, placed), 0)
    toasts = add(toasts, { kind: 'won', tone: 'success', text: 'a', profit: 8.5 }, 10)
    toasts = add(toasts, { kind: 'won', tone: 'success', text: 'b', profit: 1.5 }, 20)
    expect(toasts.map((t) => t.text)).toEqual(['EURUSD CALL 10.00 placed at Deriv', '2 trades won +10.00'])
  })

  it('only within the burst window: a later one stands alone', () => {
    const first = add([], toastFor(undefined, placed), 0)
    const later = add(first, toastFor(undefined, placed), BURST_MS + 1)
    expect(later.map((t) => t.count)).toEqual([1, 1])
  })

  it(`shows at most ${MAX_TOASTS}, the oldest giving way`, () => {
    let toasts = []
    for (let i = 0; i < MAX_TOASTS + 2; i += 1) toasts = add(toasts, { kind: 'placed', text: `t${i}` }, i * (BURST_MS + 1))
    expect(toasts.map((t) => t.text)).toEqual(['t2', 't3', 't4', 't5'])
  })
})
