// Broker kinds as people read them, and the body that links an account of each kind
// (apps/api/brokers/schemas.py BrokerAccountCreate). Pure: the view only binds a form.

export const BROKERS = [
  { kind: 'deriv', name: 'Deriv' },
  { kind: 'iqoption', name: 'IQ Option' },
]

/** "Deriv", "IQ Option"; an unknown or missing kind as given ("" for none). */
export function brokerName(kind) {
  return BROKERS.find((b) => b.kind === kind)?.name ?? (kind || '')
}

/**
 * The POST /api/v1/broker-accounts body for a link form:
 * {kind, label, token, signIn: 'password' | 'ssid', login, password, ssid, balanceType}.
 * Deriv takes an API token; IQ Option an e-mail and password, or an ssid (for accounts with
 * two-factor sign-in), and the balance it trades ("practice" unless "real" is chosen).
 * Only the fields of the chosen kind and sign-in are sent, trimmed (a password as typed).
 */
export function linkBody(form) {
  const label = (form.label ?? '').trim() || brokerName(form.kind)
  if (form.kind !== 'iqoption') {
    return { kind: 'deriv', label, credentials: { token: (form.token ?? '').trim() } }
  }
  const credentials = form.signIn === 'ssid'
    ? { token: (form.ssid ?? '').trim() }
    : { login: (form.login ?? '').trim(), password: form.password ?? '' }
  return { kind: 'iqoption', label, credentials, balance_type: form.balanceType === 'real' ? 'real' : 'practice' }
}

/**
 * A signal's counts per broker kind ({deriv: {placed, rejected, …}, …}, as the API sends
 * them) as lines to show: [{kind, name, parts: ['3 placed', '1 rejected']}], states with
 * no order left out, kinds in the order of BROKERS then any other.
 */
export function brokerLines(brokers) {
  const kinds = Object.keys(brokers || {})
  const known = BROKERS.map((b) => b.kind)
  kinds.sort((a, b) => (known.indexOf(a) + 1 || 99) - (known.indexOf(b) + 1 || 99) || a.localeCompare(b))
  return kinds
    .map((kind) => ({
      kind,
      name: brokerName(kind),
      parts: Object.entries(brokers[kind] || {}).filter(([, n]) => Number(n) > 0).map(([state, n]) => `${n} ${state}`),
    }))
    .filter((line) => line.parts.length)
}
