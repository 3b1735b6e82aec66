// @vitest-environment node
import { describe, expect, it } from 'vitest'
import { riskBody, riskForm, validateRisk } from './risk'

const ok = { stake_mode: 'multiplier', stake: '2', max_stake: '5', max_trades_per_day: '', daily_loss_limit: '', assets: '' }

describe('validateRisk (mirrors apps/api/subscriptions/risk.py)', () => {
  it('accepts sensible settings', () => {
    expect(validateRisk(ok)).toEqual({})
    expect(validateRisk({ ...ok, stake_mode: 'fixed', stake: '5', max_stake: '5', assets: 'R_100, frxEURUSD' })).toEqual({})
  })

  it.each([
    [{ stake: '0' }, 'stake', 'stake must be greater than 0'],
    [{ stake: '101' }, 'stake', 'stake must be at most 100'],
    [{ stake_mode: 'percent', stake: '100.5' }, 'stake', 'stake must be at most 100'],
    [{ stake_mode: 'fixed', stake: '6' }, 'stake', 'stake must not exceed max_stake'],
    [{ max_stake: '' }, 'max_stake', 'max_stake is required'],
    [{ max_stake: '100001' }, 'max_stake', 'max_stake must be at most 100000'],
    [{ max_stake: 'abc' }, 'max_stake', 'max_stake must be a number'],
    [{ stake: '1.123456789' }, 'stake', 'stake has more than 8 decimal places'],
    [{ daily_loss_limit: '-5' }, 'daily_loss_limit', 'daily_loss_limit must be greater than 0'],
    [{ max_trades_per_day: '0' }, 'max_trades_per_day', 'max_trades_per_day must be a whole number from 1 to 10000'],
    [{ assets: 'R_100, EUR/USD' }, 'assets', 'assets are symbols such as R_100, separated by commas'],
  ])('%o → %s: %s', (change, field, message) => {
    expect(validateRisk({ ...ok, ...change })[field]).toBe(message)
  })
})

describe('riskBody / riskForm', () => {
  it('sends blanks as null and assets as a list', () => {
    expect(riskBody({ ...ok, assets: 'R_100 R_50', max_trades_per_day: '3' })).toEqual({
      stake_mode: 'multiplier', stake: '2', max_stake: '5', max_trades_per_day: 3, daily_loss_limit: null, assets: ['R_100', 'R_50'],
    })
  })
  it('round-trips a subscription', () => {
    const sub = { stake_mode: 'fixed', stake: '1', max_stake: '2', max_trades_per_day: null, daily_loss_limit: '10', assets: ['R_10'] }
    expect(riskBody(riskForm(sub))).toEqual({ ...sub, assets: ['R_10'] })
  })
})
