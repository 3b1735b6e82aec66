// Client-side twin of the API's risk checks (apps/api/subscriptions/risk.py, money.py):
// the form refuses what the API would refuse, with the same words, before sending.

const LIMITS = { fixed: 100000, multiplier: 100, percent: 100 }
const MAX_STAKE = 100000
const MAX_DAILY_LOSS = 10000000
const MAX_PLACES = 8
const ASSET = /^[A-Za-z0-9_]{1,32}$/

function amountError(label, raw, maximum, { required = true } = {}) {
  const text = String(raw ?? '').trim()
  if (!text) return required ? `${label} is required` : null
  if (/^-\d+(\.\d+)?$/.test(text)) return `${label} must be a positive amount, e.g. 10.00`
  if (!/^\d+(\.\d+)?$/.test(text)) return `${label} must be a number, e.g. 10.00`
  const value = Number(text)
  if (value <= 0) return `${label} must be a positive amount, e.g. 10.00`
  if (value > maximum) return `${label} must be at most ${maximum}`
  const places = (text.split('.')[1] || '').length
  if (places > MAX_PLACES) return `${label} has too many decimals (at most ${MAX_PLACES}), e.g. 10.00`
  return null
}

/** → {field: message} (empty when valid). `form` holds strings as typed. */
export function validateRisk(form) {
  const errors = {}
  const mode = form.stake_mode
  if (!(mode in LIMITS)) errors.stake_mode = 'Choose fixed, multiplier or percent'
  const maxStake = amountError('Maximum stake', form.max_stake, MAX_STAKE)
  if (maxStake) errors.max_stake = maxStake
  const stake = amountError('Stake', form.stake, LIMITS[mode] ?? MAX_STAKE)
  if (stake) errors.stake = stake
  else if (mode === 'fixed' && !maxStake && Number(form.stake) > Number(form.max_stake)) {
    errors.stake = 'Stake must not exceed maximum stake'
  }
  const loss = amountError('Daily loss limit', form.daily_loss_limit, MAX_DAILY_LOSS, { required: false })
  if (loss) errors.daily_loss_limit = loss
  const trades = String(form.max_trades_per_day ?? '').trim()
  if (trades && (!/^\d+$/.test(trades) || Number(trades) < 1 || Number(trades) > 10000)) {
    errors.max_trades_per_day = 'Maximum trades per day must be a whole number from 1 to 10000'
  }
  const assets = parseAssets(form.assets)
  if (assets.length > 200) errors.assets = 'At most 200 assets'
  else if (assets.some((a) => !ASSET.test(a))) errors.assets = 'Assets are symbols such as R_100, separated by commas'
  return errors
}

export function parseAssets(text) {
  if (Array.isArray(text)) return text
  return String(text ?? '').split(/[\s,]+/).map((a) => a.trim()).filter(Boolean)
}

/** The form's strings → the API body (optional fields null/absent when blank). */
export function riskBody(form) {
  const trim = (v) => String(v ?? '').trim()
  return {
    stake_mode: form.stake_mode,
    stake: trim(form.stake),
    max_stake: trim(form.max_stake),
    max_trades_per_day: trim(form.max_trades_per_day) ? Number(trim(form.max_trades_per_day)) : null,
    daily_loss_limit: trim(form.daily_loss_limit) || null,
    assets: parseAssets(form.assets),
  }
}

export function riskForm(subscription) {
  return {
    stake_mode: subscription?.stake_mode ?? 'multiplier',
    stake: String(subscription?.stake ?? '1'),
    max_stake: String(subscription?.max_stake ?? '10'),
    max_trades_per_day: subscription?.max_trades_per_day == null ? '' : String(subscription.max_trades_per_day),
    daily_loss_limit: subscription?.daily_loss_limit == null ? '' : String(subscription.daily_loss_limit),
    assets: (subscription?.assets ?? []).join(', '),
  }
}
