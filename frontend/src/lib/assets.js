// The assets the Deriv simulator (and Deriv) trade; the picker searches these.
export const ASSETS = [
  { symbol: 'R_10', name: 'Volatility 10 Index' },
  { symbol: 'R_25', name: 'Volatility 25 Index' },
  { symbol: 'R_50', name: 'Volatility 50 Index' },
  { symbol: 'R_75', name: 'Volatility 75 Index' },
  { symbol: 'R_100', name: 'Volatility 100 Index' },
  { symbol: '1HZ10V', name: 'Volatility 10 (1s) Index' },
  { symbol: '1HZ25V', name: 'Volatility 25 (1s) Index' },
  { symbol: '1HZ50V', name: 'Volatility 50 (1s) Index' },
  { symbol: '1HZ75V', name: 'Volatility 75 (1s) Index' },
  { symbol: '1HZ100V', name: 'Volatility 100 (1s) Index' },
  { symbol: 'frxEURUSD', name: 'EUR/USD' },
  { symbol: 'frxGBPUSD', name: 'GBP/USD' },
  { symbol: 'frxUSDJPY', name: 'USD/JPY' },
  { symbol: 'frxAUDUSD', name: 'AUD/USD' },
  { symbol: 'frxUSDCAD', name: 'USD/CAD' },
  { symbol: 'frxXAUUSD', name: 'Gold/USD' },
]

export function searchAssets(query, assets = ASSETS) {
  const q = String(query || '').trim().toLowerCase()
  if (!q) return assets
  return assets.filter((a) => a.symbol.toLowerCase().includes(q) || a.name.toLowerCase().includes(q))
}

export const EXPIRY_PRESETS = [15, 30, 60, 300, 900, 3600]
export const STAKE_PRESETS = ['1', '5', '10', '25', '100']

/** Validate a signal the way the API does (expiry 15..86400 s, stake 0.35..50000, 2 places). */
export function signalErrors({ asset, expiry_seconds: expiry, stake }) {
  const errors = {}
  if (!asset) errors.asset = 'Pick an asset'
  if (!Number.isInteger(expiry) || expiry < 15 || expiry > 86400) errors.expiry_seconds = 'Expiry must be 15 s to 24 h'
  const s = String(stake ?? '').trim()
  if (/^-\d+(\.\d+)?$/.test(s)) errors.stake = 'Stake must be a positive amount, e.g. 10.00'
  else if (/^\d+\.\d{3,}$/.test(s)) errors.stake = 'Stake has too many decimals (at most 2), e.g. 10.50'
  else if (!/^\d+(\.\d{1,2})?$/.test(s)) errors.stake = 'Stake must be an amount, e.g. 10.00'
  else if (Number(s) < 0.35 || Number(s) > 50000) errors.stake = 'Stake must be between 0.35 and 50000'
  return errors
}
