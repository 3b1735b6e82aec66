// @vitest-environment node
import { describe, expect, it } from 'vitest'
import { brokerMinimum, riskBody, riskForm, riskWarnings, stakePreview, typicalStake, validateRisk } from './risk'

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
      balance_floor: null, max_drawdown_percent: null, round_up_to_min_stake: false, directions: [], reverse: false,
    })
  })
  it('round-trips a subscription', () => {
    const sub = { stake_mode: 'fixed', stake: '1', max_stake: '2', max_trades_per_day: null, daily_loss_limit: '10', assets: ['R_10'] }
    expect(riskBody(riskForm(sub))).toEqual({
      ...sub, assets: ['R_10'], balance_floor: null, max_drawdown_percent: null, round_up_to_min_stake: false, directions: [], reverse: false,
    })
  })
})

describe('the new limits', () => {
  it('validates the drawdown and the floor in plain words', () => {
    expect(validateRisk({ ...ok, max_drawdown_percent: '150' }).max_drawdown_percent).toBe('max drawdown must be between 0 and 100 %')
    expect(validateRisk({ ...ok, max_drawdown_percent: '0' }).max_drawdown_percent).toBe('max drawdown must be between 0 and 100 %')
    expect(validateRisk({ ...ok, max_drawdown_percent: '25', balance_floor: '500' })).toEqual({})
    expect(validateRisk({ ...ok, balance_floor: 'x' }).balance_floor).toBe('balance floor must be a number, e.g. 10.00')
  })
  it('sends and reads them back', () => {
    const sub = { stake_mode: 'fixed', stake: '1', max_stake: '2', max_trades_per_day: null, daily_loss_limit: '10', assets: [], balance_floor: '500', max_drawdown_percent: '20', round_up_to_min_stake: true, directions: ['PUT'], reverse: true }
    expect(riskBody(riskForm(sub))).toEqual(sub)
    expect(riskBody(riskForm({ ...sub, directions: [] })).directions).toEqual([])
    expect(riskForm(null).directions).toBe('both')
  })
})

describe('stakePreview', () => {
  const form = { ...ok, stake_mode: 'percent', stake: '1', max_stake: '50' }
  it('shows the percent of the balance and the cap', () => {
    expect(stakePreview(form, { balance: '10000' })).toEqual({
      stake: 50, steps: ['1 % of 10,000.00 = 100.00', '→ capped at 50.00'], refused: null,
    })
  })
  it('uses the channel typical stake for a multiplier', () => {
    const p = stakePreview({ ...form, stake_mode: 'multiplier', stake: '2' }, { typical: 10 })
    expect(p.stake).toBe(20)
    expect(p.steps[0]).toBe("2 × 10.00 (the channel's typical stake) = 20.00")
  })
  it('refuses below the broker minimum, or raises to it when opted in', () => {
    const small = { ...form, stake_mode: 'fixed', stake: '0.2', max_stake: '5' }
    const broker = brokerMinimum('iqoption', 'USD')
    expect(stakePreview(small, { broker }).refused).toBe("stake 0.20 is below IQ Option's minimum 1.00: such trades are refused")
    expect(stakePreview({ ...small, round_up_to_min_stake: true }, { broker })).toEqual({
      stake: 1, steps: ['0.20 per trade', "→ raised to IQ Option's minimum 1.00"], refused: null,
    })
    expect(stakePreview({ ...small, max_stake: '0.5', round_up_to_min_stake: true }, { broker }).refused).toMatch(/below/)
    expect(brokerMinimum('deriv', 'USD')).toEqual({ name: 'Deriv', amount: 0.35 })
    expect(brokerMinimum('deriv', 'BTC')).toBeNull()
  })
  it('says what it needs when the balance or the typical stake is unknown', () => {
    expect(stakePreview(form).steps).toEqual(['the broker balance is not known: verify the account'])
    expect(typicalStake([{ stake: '10' }, { stake: '2' }, { stake: '5' }])).toBe(5)
    expect(typicalStake([])).toBeNull()
  })
})

describe('riskWarnings', () => {
  it('warns when the max stake exceeds the loss limit or the balance', () => {
    expect(riskWarnings({ ...ok, max_stake: '50', daily_loss_limit: '30' }, { balance: '40' })).toEqual([
      'Your max stake (50.00) exceeds your daily loss limit (30.00): a trade that large is always refused.',
      'Your max stake (50.00) exceeds your broker balance (40.00).',
    ])
    expect(riskWarnings({ ...ok, max_stake: '5', balance_floor: '500' }, { balance: '400' })).toEqual([
      'Your balance (400.00) is already below your floor (500.00): nothing is copied until it is back above.',
    ])
    expect(riskWarnings(ok, { balance: '1000' })).toEqual([])
  })
})
