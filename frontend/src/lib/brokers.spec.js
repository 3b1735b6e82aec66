import { describe, expect, it } from 'vitest'
import { brokerLines, brokerName, linkBody } from './brokers'

describe('brokerName', () => {
  it('names both kinds and passes anything else through', () => {
    expect(brokerName('deriv')).toBe('Deriv')
    expect(brokerName('iqoption')).toBe('IQ Option')
    expect(brokerName('binance')).toBe('binance')
    expect(brokerName(undefined)).toBe('')
  })
})

describe('linkBody', () => {
  it('sends a Deriv token, trimmed, with the kind as the default label', () => {
    expect(linkBody({ kind: 'deriv', label: ' ', token: ' tok ', login: 'x', ssid: 'y' }))
      .toEqual({ kind: 'deriv', label: 'Deriv', credentials: { token: 'tok' } })
  })

  it('sends an IQ Option e-mail and password (as typed) with the practice balance by default', () => {
    expect(linkBody({ kind: 'iqoption', label: 'Mine', signIn: 'password', login: ' me@x.io ', password: ' p w ', ssid: 'zz', token: 't' }))
      .toEqual({ kind: 'iqoption', label: 'Mine', credentials: { login: 'me@x.io', password: ' p w ' }, balance_type: 'practice' })
  })

  it('sends only the ssid when linking by ssid, and the real balance when chosen', () => {
    expect(linkBody({ kind: 'iqoption', label: '', signIn: 'ssid', ssid: ' abc123 ', login: 'me@x.io', password: 'p', balanceType: 'real' }))
      .toEqual({ kind: 'iqoption', label: 'IQ Option', credentials: { token: 'abc123' }, balance_type: 'real' })
  })
})

describe('brokerLines', () => {
  it('lists each kind with an order, Deriv first, states with none left out', () => {
    expect(brokerLines({
      iqoption: { placed: 2, rejected: 1, expired: 0, failed: 0, unknown: 0 },
      deriv: { placed: 3, rejected: 0, expired: 0, failed: 0, unknown: 0 },
      other: { placed: 0 },
    })).toEqual([
      { kind: 'deriv', name: 'Deriv', parts: ['3 placed'] },
      { kind: 'iqoption', name: 'IQ Option', parts: ['2 placed', '1 rejected'] },
    ])
    expect(brokerLines(undefined)).toEqual([])
  })
})
