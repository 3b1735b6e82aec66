import { beforeEach, describe, expect, it } from 'vitest'
import {
  CHOICES,
  STORAGE_KEY,
  chartInk,
  choiceLabel,
  chooseTheme,
  currentTheme,
  nextChoice,
  readChoice,
  resolveTheme,
  startTheme,
  themeChoice,
} from './theme'

function fakeWindow({ stored = null, dark = false } = {}) {
  const items = new Map(stored ? [[STORAGE_KEY, stored]] : [])
  const listeners = { change: [], storage: [] }
  const media = {
    matches: dark,
    addEventListener: (type, fn) => listeners[type].push(fn),
  }
  return {
    media,
    listeners,
    items,
    localStorage: {
      getItem: (k) => (items.has(k) ? items.get(k) : null),
      setItem: (k, v) => items.set(k, String(v)),
      removeItem: (k) => items.delete(k),
    },
    matchMedia: () => media,
    addEventListener: (type, fn) => listeners[type].push(fn),
  }
}

function fakeDocument() {
  const attrs = {}
  return { attrs, documentElement: { setAttribute: (k, v) => { attrs[k] = v } } }
}

describe('theme choice', () => {
  it('defaults to the system, and ignores what it does not know', () => {
    expect(readChoice(fakeWindow().localStorage)).toBe('system')
    expect(readChoice(fakeWindow({ stored: 'sepia' }).localStorage)).toBe('system')
    expect(readChoice(fakeWindow({ stored: 'dark' }).localStorage)).toBe('dark')
    expect(readChoice(undefined)).toBe('system')
    expect(readChoice({ getItem: () => { throw new Error('blocked') } })).toBe('system')
  })

  it('resolves "system" by the device and keeps an explicit choice', () => {
    expect(resolveTheme('system', true)).toBe('dark')
    expect(resolveTheme('system', false)).toBe('light')
    expect(resolveTheme('light', true)).toBe('light')
    expect(resolveTheme('dark', false)).toBe('dark')
  })

  it('cycles light → dark → system and names each', () => {
    expect(CHOICES.map(nextChoice)).toEqual(['dark', 'system', 'light'])
    expect(CHOICES.map(choiceLabel)).toEqual(['Light', 'Dark', 'System'])
  })

  it('gives charts light ink on dark and dark ink on light', () => {
    expect(chartInk('dark').text).not.toBe(chartInk('light').text)
    expect(chartInk('dark').grid).toMatch(/255, 255, 255/)
    expect(chartInk('light').grid).toMatch(/0, 0, 0/)
  })
})

describe('theme on the page', () => {
  beforeEach(() => {
    themeChoice.value = 'system'
    currentTheme.value = 'light'
  })

  it('follows the system, live, while the choice is "system"', () => {
    const win = fakeWindow({ dark: true })
    const doc = fakeDocument()
    startTheme({ win, doc })
    expect(doc.attrs['data-bs-theme']).toBe('dark')
    win.media.matches = false
    win.listeners.change.forEach((fn) => fn())
    expect(doc.attrs['data-bs-theme']).toBe('light')
    expect(currentTheme.value).toBe('light')
  })

  it('remembers an explicit choice, and forgets it for "system"', () => {
    const win = fakeWindow({ dark: true })
    const doc = fakeDocument()
    startTheme({ win, doc })
    chooseTheme('light', { win, doc })
    expect(doc.attrs['data-bs-theme']).toBe('light')
    expect(win.items.get(STORAGE_KEY)).toBe('light')
    chooseTheme('system', { win, doc })
    expect(win.items.has(STORAGE_KEY)).toBe(false)
    expect(doc.attrs['data-bs-theme']).toBe('dark')
  })

  it('takes another tab\'s choice', () => {
    const win = fakeWindow()
    const doc = fakeDocument()
    startTheme({ win, doc })
    win.items.set(STORAGE_KEY, 'dark')
    win.listeners.storage.forEach((fn) => fn({ key: STORAGE_KEY }))
    expect(themeChoice.value).toBe('dark')
    expect(doc.attrs['data-bs-theme']).toBe('dark')
  })
})
