// @vitest-environment node
import { describe, expect, it } from 'vitest'
import { ApiError } from '@/api/client'
import { cumulative, fieldErrors, money, progressSegments } from './format'

describe('fieldErrors', () => {
  it("puts a nested field's words beside its own input too", () => {
    const err = { message: 'Price must be a positive amount, e.g. 10.00', details: [{ key: 'plan.price', message: 'Price must be a positive amount, e.g. 10.00' }] }
    expect(fieldErrors(err, ['price'])).toEqual({ 'plan.price': err.message, price: err.message })
  })

  it('reads msgspec paths, nested ones by their last name', () => {
    const err = new ApiError('Expected `str` of length >= 8 - at `$.password`', { status: 400 })
    expect(fieldErrors(err, ['email', 'password'])).toEqual({ password: 'Expected `str` of length >= 8' })
    const nested = new ApiError('Expected `int` >= 1 - at `$.plan.period_days`', { status: 400 })
    expect(fieldErrors(nested)).toEqual({ period_days: 'Expected `int` >= 1' })
  })

  it('reads detail lists and field-named messages', () => {
    const listed = new ApiError('bad', { details: [{ key: 'email', message: 'taken' }] })
    expect(fieldErrors(listed)).toEqual({ email: 'taken' })
    const named = new ApiError('stake must not exceed max_stake')
    expect(fieldErrors(named, ['max_stake', 'stake'])).toEqual({ stake: 'stake must not exceed max_stake' })
    const conflict = new ApiError('an account with this e-mail exists', { status: 409 })
    expect(fieldErrors(conflict, ['email', 'password'])).toEqual({ email: 'an account with this e-mail exists' })
  })

  it('leaves unattributable errors for a general message', () => {
    expect(fieldErrors(new ApiError('too many attempts'), ['email'])).toEqual({})
    expect(fieldErrors(null)).toEqual({})
  })
})

describe('progressSegments', () => {
  it('gives each outcome its share of the total', () => {
    const view = progressSegments({ total: 4, placed: 2, rejected: 1, expired: 0, failed: 0, unknown: 0 })
    expect(view.segments.map((s) => [s.key, s.count, s.pct])).toEqual([
      ['placed', 2, 50], ['rejected', 1, 25], ['expired', 0, 0], ['failed', 0, 0], ['unknown', 0, 0],
    ])
    expect(view.complete).toBe(false)
    expect(view.settled).toBe(3)
  })

  it('copes with an unknown total and never exceeds 100 %', () => {
    expect(progressSegments({ total: null, placed: 3 }).segments[0].pct).toBe(100)
    expect(progressSegments(null).total).toBe(null)
    const done = progressSegments({ total: 1, placed: 1, rejected: 0, expired: 0, failed: 0, unknown: 0 })
    expect(done.complete).toBe(true)
  })
})

describe('cumulative and money', () => {
  it('sums in time order', () => {
    const pts = cumulative([{ t: 2, v: '-1' }, { t: 1, v: '0.95' }, { t: 3, v: null }], (i) => i.t, (i) => i.v)
    expect(pts).toEqual([{ x: 1, y: 0.95 }, { x: 2, y: -0.05 }, { x: 3, y: -0.05 }])
  })
  it('formats money', () => {
    expect(money('-1.5', 'USD')).toBe('−1.50 USD')
    expect(money(null)).toBe('—')
  })
})
