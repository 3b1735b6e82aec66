// @vitest-environment node
import { describe, expect, it } from 'vitest'
import { searchAssets, signalErrors } from './assets'

describe('asset search and signal checks', () => {
  it('finds by symbol or name, case-insensitively', () => {
    expect(searchAssets('eur').map((a) => a.symbol)).toEqual(['frxEURUSD'])
    expect(searchAssets('volatility 100').map((a) => a.symbol)).toEqual(['R_100', '1HZ100V'])
    expect(searchAssets('').length).toBeGreaterThan(10)
  })
  it('checks expiry and stake like the API', () => {
    expect(signalErrors({ asset: 'R_100', expiry_seconds: 15, stake: '1' })).toEqual({})
    expect(Object.keys(signalErrors({ asset: '', expiry_seconds: 10, stake: '0.1' }))).toEqual(['asset', 'expiry_seconds', 'stake'])
    expect(signalErrors({ asset: 'R_100', expiry_seconds: 60, stake: '1.234' }).stake).toBe('Stake has too many decimals (at most 2), e.g. 10.50')
    expect(signalErrors({ asset: 'R_100', expiry_seconds: 60, stake: '-3' }).stake).toBe('Stake must be a positive amount, e.g. 10.00')
  })
})
