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
    [{ stake: '0' }, 'stake', 'Stake must be a positive amount, e.g. 10.00'],
    [{ stake: '101' }, 'stake', 'Stake must be at most 100'],
    [{ stake_mode: 'percent', stake: '100.5' }, 'stake', 'Stake must be at most 100'],
    [{ stake_mode: 'fixed', stake: '6' }, 'stake', 'Stake must not exceed maximum stake'],
    [{ max_stake: '' }, 'max_stake', 'Maximum stake is required'],
    [{ max_stake: '100001' }, 'max_stake', 'Maximum stake must be at most 100000'],
    [{ max_stake: 'abc' }, 'max_stake', 'Maximum stake must be a number, e.g. 10.00'],
    [{ stake: '-3' }, 'stake', 'Stake must be a positive amount, e.g. 10.00'],
    [{ stake: '1.123456789' }, 'stake', 'Stake has too many decimals (at most 8), e.g. 10.00'],
    [{ daily_loss_limit: '-5' }, 'daily_loss_limit', 'Daily loss limit must be a positive amount, e.g. 10.00'],
    [{ daily_loss_limit: 'ten' }, 'daily_loss_limit', 'Daily loss limit must be a number, e.g. 10.00'],
    [{ max_trades_per_day: '0' }, 'max_trades_per_day', 'Maximum trades per day must be a whole number from 1 to 10000'],
    [{ assets: 'R_100, EUR/USD' }, 'assets', 'Assets are symbols such as R_100, separated by commas'],
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
