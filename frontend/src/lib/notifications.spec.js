import { describe, expect, it } from 'vitest'
import { nextOverride, withOverride } from './notifications'

describe('notification preferences grid', () => {
  it('cycles a cell from the default to on, off and back', () => {
    expect(nextOverride(undefined)).toBe(true)
    expect(nextOverride(true)).toBe(false)
    expect(nextOverride(false)).toBe(null)
  })

  it('sets and clears one override without touching the others', () => {
    const start = { won: { email: true }, lost: { telegram: false } }
    const set = withOverride(start, 'won', 'telegram', true)
    expect(set).toEqual({ won: { email: true, telegram: true }, lost: { telegram: false } })
    expect(start.won).toEqual({ email: true })
    expect(withOverride(set, 'lost', 'telegram', null)).toEqual({ won: { email: true, telegram: true } })
  })
})
