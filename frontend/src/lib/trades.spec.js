import { describe, expect, it } from 'vitest'
import {
  apiParams,
  delayText,
  expiryText,
  filtersFromQuery,
  matchesFilters,
  mergeTrade,
  mergeTrades,
  outcomeOf,
  queryFromFilters,
  spotsText,
  tradeTime,
} from './trades'

const trade = (id, fields = {}) => ({
  order_id: `${id}.sub1`,
  signal_id: id,
  channel_id: 'c1',
  state: 'placed',
  outcome: null,
  at: 1_800_000_000,
  settled_at: null,
  entry_spot: null,
  exit_spot: null,
  ...fields,
})

describe('filters in the URL query', () => {
  it('keeps only known, well-formed values', () => {
    expect(filtersFromQuery({ channel: 'c1', outcome: 'won', from: '2026-12-01', to: 'soon' }))
      .toEqual({ channel: 'c1', outcome: 'won', from: '2026-12-01', to: '' })
    expect(filtersFromQuery({ outcome: 'maybe' }).outcome).toBe('')
    expect(filtersFromQuery({ channel: ['c2', 'c3'] }).channel).toBe('c2')
    expect(filtersFromQuery()).toEqual({ channel: '', outcome: '', from: '', to: '' })
  })

  it('writes only the filters set, and asks the API with its names', () => {
    const filters = { channel: 'c1', outcome: '', from: '2026-12-01', to: '' }
    expect(queryFromFilters(filters)).toEqual({ channel: 'c1', from: '2026-12-01' })
    expect(apiParams(filters)).toEqual({ channel_id: 'c1', outcome: undefined, since: '2026-12-01', until: undefined, limit: 200 })
    expect(apiParams({ ...filters, to: '2026-12-02' }, 50)).toMatchObject({ until: '2026-12-02', limit: 50 })
  })
})

describe('filtering a trade as the API does', () => {
  const day = Date.parse('2026-12-06T00:00:00Z') / 1000
  it('by channel, outcome and whole UTC days', () => {
    const open = trade('A', { at: day + 10 })
    const won = trade('B', { outcome: 'won', at: day - 10 })
    const rejected = trade('C', { state: 'rejected', channel_id: 'c2', at: day + 86400 })
    const none = { channel: '', outcome: '', from: '', to: '' }
    expect(matchesFilters(open, { ...none, outcome: 'open' })).toBe(true)
    expect(matchesFilters(won, { ...none, outcome: 'open' })).toBe(false)
    expect(matchesFilters(rejected, { ...none, outcome: 'open' })).toBe(false)
    expect(matchesFilters(won, { ...none, outcome: 'won' })).toBe(true)
    expect(matchesFilters(rejected, { ...none, channel: 'c1' })).toBe(false)
    const dec6 = { ...none, from: '2026-12-06', to: '2026-12-06' }
    expect([open, won, rejected].map((t) => matchesFilters(t, dec6))).toEqual([true, false, false])
    expect(matchesFilters(trade('D', { at: null, settled_at: day + 5 }), dec6)).toBe(true)
    expect(matchesFilters(trade('E', { at: null }), dec6)).toBe(false)
  })
})

describe('pushed trades merged over the fetched history', () => {
  it('lets the pushed known fields win and keeps the fetched ones it does not know', () => {
    const fetched = trade('A', { stake: '2', latency_ms: 80 })
    const pushed = { ...trade('A'), at: null, outcome: 'won', profit: '1.90', exit_spot: '1.25', latency_ms: null }
    expect(mergeTrade(fetched, pushed)).toMatchObject({ at: 1_800_000_000, stake: '2', latency_ms: 80, outcome: 'won', exit_spot: '1.25' })
    expect(mergeTrade(undefined, pushed)).toEqual(pushed)
  })

  it('adds a trade pushed before any fetch, newest first, within the filters', () => {
    const fetched = [trade('B'), trade('A')]
    const pushed = [trade('C'), trade('D', { channel_id: 'c2' }), { ...trade('A'), outcome: 'lost' }]
    const all = mergeTrades(fetched, pushed, {})
    expect(all.map((t) => t.signal_id)).toEqual(['D', 'C', 'B', 'A'])
    expect(all[3].outcome).toBe('lost')
    const c1 = mergeTrades(fetched, pushed, { channel: 'c1' })
    expect(c1.map((t) => t.signal_id)).toEqual(['C', 'B', 'A'])
    expect(mergeTrades(fetched, pushed, { outcome: 'open' }).map((t) => t.signal_id)).toEqual(['D', 'C', 'B'])
    expect(mergeTrades(undefined, undefined)).toEqual([])
  })
})

describe('cells', () => {
  it('says the outcome, an open trade included', () => {
    expect(outcomeOf(trade('A'))).toBe('open')
    expect(outcomeOf(trade('A', { outcome: 'won' }))).toBe('won')
    expect(outcomeOf(trade('A', { state: 'rejected' }))).toBe('')
    expect(tradeTime(trade('A', { at: null, settled_at: 5 }))).toBe(5)
  })

  it('shows the spots the broker quoted', () => {
    expect(spotsText(trade('A'))).toBe('—')
    expect(spotsText(trade('A', { entry_spot: '1.1000' }))).toBe('1.1000 → …')
    expect(spotsText(trade('A', { entry_spot: '1.1000', exit_spot: '1.1012', outcome: 'won' }))).toBe('1.1000 → 1.1012')
    expect(spotsText(trade('A', { exit_spot: '7', outcome: 'lost' }))).toBe('— → 7')
  })

  it('gives expiries and delays in plain units', () => {
    expect([expiryText(45), expiryText(60), expiryText(300), expiryText(3600), expiryText(5400), expiryText(90)])
      .toEqual(['45 s', '1 min', '5 min', '1 h', '1 h 30 min', '90 s'])
    expect(expiryText(null)).toBe('—')
    expect([delayText(84.6), delayText(1234), delayText(null)]).toEqual(['85 ms', '1.2 s', '—'])
  })
})
