// Client-side twin of the API's risk checks (apps/api/subscriptions/risk.py, money.py):
// the form refuses what the API would refuse, with the same words, before sending.

const LIMITS = { fixed: 100000, multiplier: 100, percent: 100 }
const MAX_STAKE = 100000
const MAX_DAILY_LOSS = 10000000
const MAX_BALANCE_FLOOR = 100000000
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
  const floor = amountError('balance floor', form.balance_floor, MAX_BALANCE_FLOOR, { required: false })
  if (floor) errors.balance_floor = floor
  const drawdown = String(form.max_drawdown_percent ?? '').trim()
  if (drawdown && (!/^\d+(\.\d+)?$/.test(drawdown) || Number(drawdown) <= 0 || Number(drawdown) > 100)) {
    errors.max_drawdown_percent = 'max drawdown must be between 0 and 100 %'
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
    balance_floor: trim(form.balance_floor) || null,
    max_drawdown_percent: trim(form.max_drawdown_percent) || null,
    round_up_to_min_stake: Boolean(form.round_up_to_min_stake),
    directions: form.directions === 'CALL' || form.directions === 'PUT' ? [form.directions] : [],
    reverse: Boolean(form.reverse),
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
    balance_floor: subscription?.balance_floor == null ? '' : String(subscription.balance_floor),
    max_drawdown_percent: subscription?.max_drawdown_percent == null ? '' : String(subscription.max_drawdown_percent),
    round_up_to_min_stake: Boolean(subscription?.round_up_to_min_stake),
    // One direction, or "both" (the API's empty list).
    directions: subscription?.directions?.length === 1 ? subscription.directions[0] : 'both',
    reverse: Boolean(subscription?.reverse),
  }
}

// The brokers' minimum stakes (apps/core/brokers/deriv.py, iqoption.py): Deriv's applies
// to the currencies it publishes limits for; elsewhere the broker checks at purchase.
const DERIV_LIMIT_CURRENCIES = ['USD', 'EUR', 'GBP', 'AUD']

/** {name, amount} of the broker's minimum stake, or null where none is known. */
export function brokerMinimum(kind, currency) {
  if (kind === 'iqoption') return { name: 'IQ Option', amount: 1 }
  if (kind === 'deriv' && DERIV_LIMIT_CURRENCIES.includes(currency || 'USD')) return { name: 'Deriv', amount: 0.35 }
  return null
}

const num = (v) => {
  const text = String(v ?? '').trim()
  return text && /^\d+(\.\d+)?$/.test(text) ? Number(text) : null
}
const fmt = (n) => n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })
const floorCents = (n) => Math.floor(n * 100 + 1e-9) / 100

/** The median of the channel's recent signal stakes (the channel's typical stake). */
export function typicalStake(signals) {
  const stakes = (signals ?? []).map((s) => Number(s.stake)).filter((n) => Number.isFinite(n) && n > 0).sort((a, b) => a - b)
  if (!stakes.length) return null
  const mid = Math.floor(stakes.length / 2)
  return stakes.length % 2 ? stakes[mid] : (stakes[mid - 1] + stakes[mid]) / 2
}

/**
 * The real stake of a trade, worked out as the router does (apps/router/risk.py and
 * broker_rules.py): the mode, rounded down to cents, capped at the max stake, then the
 * broker's minimum (refused, or raised to it for those who opted in, never above the max
 * stake). `context`: {balance, typical, broker: {name, amount} | null}.
 * → {stake: number | null, steps: ['1 % of 10,000.00 = 100.00', '→ capped at 50.00'], refused: string | null}
 */
export function stakePreview(form, { balance = null, typical = null, broker = null } = {}) {
  const stake = num(form.stake)
  const max = num(form.max_stake)
  if (stake == null || max == null) return { stake: null, steps: [], refused: null }
  let amount
  const steps = []
  if (form.stake_mode === 'fixed') {
    amount = stake
    steps.push(`${fmt(stake)} per trade`)
  } else if (form.stake_mode === 'multiplier') {
    if (typical == null) return { stake: null, steps: ["the channel's typical stake is not known yet"], refused: null }
    amount = floorCents(typical * stake)
    steps.push(`${stake} × ${fmt(typical)} (the channel's typical stake) = ${fmt(amount)}`)
  } else {
    if (balance == null) return { stake: null, steps: ['the broker balance is not known: verify the account'], refused: null }
    amount = floorCents((Number(balance) * stake) / 100)
    steps.push(`${stake} % of ${fmt(Number(balance))} = ${fmt(amount)}`)
  }
  if (amount > max) {
    amount = max
    steps.push(`→ capped at ${fmt(max)}`)
  }
  if (broker && amount < broker.amount) {
    if (form.round_up_to_min_stake && broker.amount <= max) {
      amount = broker.amount
      steps.push(`→ raised to ${broker.name}'s minimum ${fmt(broker.amount)}`)
    } else {
      return { stake: null, steps, refused: `stake ${fmt(amount)} is below ${broker.name}'s minimum ${fmt(broker.amount)}: such trades are refused` }
    }
  }
  return { stake: amount, steps, refused: null }
}

/** Settings that would surprise their subscriber: plain sentences, [] when none. */
export function riskWarnings(form, { balance = null } = {}) {
  const warnings = []
  const max = num(form.max_stake)
  const loss = num(form.daily_loss_limit)
  const floor = num(form.balance_floor)
  const held = balance == null ? null : Number(balance)
  if (max != null && loss != null && max > loss) {
    warnings.push(`Your max stake (${fmt(max)}) exceeds your daily loss limit (${fmt(loss)}): a trade that large is always refused.`)
  }
  if (max != null && held != null && max > held) {
    warnings.push(`Your max stake (${fmt(max)}) exceeds your broker balance (${fmt(held)}).`)
  }
  if (floor != null && held != null && held < floor) {
    warnings.push(`Your balance (${fmt(held)}) is already below your floor (${fmt(floor)}): nothing is copied until it is back above.`)
  }
  return warnings
}
