// @vitest-environment node
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ARM_TIMEOUT_MS, createArming, isTyping, keyAction, newerFigures, senderLabel } from './sending'

const key = (k, target = { tagName: 'BODY' }, mods = {}) => ({ key: k, target, ...mods })
const disarmed = { armed: false, confirming: false }
const armed = { armed: true, confirming: false }
const confirming = { armed: true, confirming: true }

describe('keys', () => {
  it('a send key while disarmed only hints', () => {
    for (const k of ['c', 'C', 'p', 'P', 'ArrowUp', 'ArrowDown']) expect(keyAction(key(k), disarmed)).toEqual({ type: 'hint' })
  })
  it('a send key while armed opens the confirmation, never sends', () => {
    expect(keyAction(key('c'), armed)).toEqual({ type: 'propose', direction: 'CALL' })
    expect(keyAction(key('ArrowUp'), armed)).toEqual({ type: 'propose', direction: 'CALL' })
    expect(keyAction(key('p'), armed)).toEqual({ type: 'propose', direction: 'PUT' })
    expect(keyAction(key('ArrowDown'), armed)).toEqual({ type: 'propose', direction: 'PUT' })
  })
  it('Enter confirms and Escape cancels only while the confirmation is open', () => {
    expect(keyAction(key('Enter'), confirming)).toEqual({ type: 'confirm' })
    expect(keyAction(key('Escape'), confirming)).toEqual({ type: 'cancel' })
    expect(keyAction(key('Enter'), armed)).toEqual({ type: 'none' })
    expect(keyAction(key('Escape'), armed)).toEqual({ type: 'none' })
    // Another send key while confirming does not replace the contract shown.
    expect(keyAction(key('p'), confirming)).toEqual({ type: 'none' })
  })
  it('keys with a modifier, and keys typed into text fields, are not shortcuts', () => {
    expect(keyAction(key('c', undefined, { ctrlKey: true }), armed)).toEqual({ type: 'none' })
    expect(keyAction(key('c', undefined, { metaKey: true }), armed)).toEqual({ type: 'none' })
    expect(keyAction(key('c', { tagName: 'INPUT', type: 'search' }), armed)).toEqual({ type: 'none' })
    expect(keyAction(key('p', { tagName: 'TEXTAREA' }), armed)).toEqual({ type: 'none' })
    expect(keyAction(key('/', { tagName: 'INPUT', type: 'text' }), armed)).toEqual({ type: 'none' })
    expect(keyAction(key('/'), disarmed)).toEqual({ type: 'search' })
  })
  it('the Armed switch (a checkbox) keeps the focus without swallowing shortcuts', () => {
    expect(isTyping({ tagName: 'INPUT', type: 'checkbox' })).toBe(false)
    expect(isTyping({ tagName: 'INPUT' })).toBe(true)
    expect(keyAction(key('c', { tagName: 'INPUT', type: 'checkbox' }), armed)).toEqual({ type: 'propose', direction: 'CALL' })
  })
})

describe('arming', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('lapses 60 s after arming, with the reason', () => {
    const changes = []
    const arming = createArming({ onChange: (...c) => changes.push(c) })
    expect(arming.armed).toBe(false)
    arming.arm()
    expect(arming.armed).toBe(true)
    vi.advanceTimersByTime(ARM_TIMEOUT_MS - 1)
    expect(arming.armed).toBe(true)
    vi.advanceTimersByTime(1)
    expect(arming.armed).toBe(false)
    expect(changes).toEqual([[true, 'toggle'], [false, 'timeout']])
  })
  it('a send starts the 60 s again', () => {
    const arming = createArming()
    arming.arm()
    vi.advanceTimersByTime(50_000)
    arming.sent()
    vi.advanceTimersByTime(50_000)
    expect(arming.armed).toBe(true)
    vi.advanceTimersByTime(10_000)
    expect(arming.armed).toBe(false)
  })
  it('disarms on leaving or hiding, once, and a send while disarmed does not arm', () => {
    const changes = []
    const arming = createArming({ onChange: (...c) => changes.push(c) })
    arming.sent()
    expect(arming.armed).toBe(false)
    arming.arm()
    arming.disarm('hidden')
    arming.disarm('left')
    vi.advanceTimersByTime(ARM_TIMEOUT_MS * 2)
    expect(changes).toEqual([[true, 'toggle'], [false, 'hidden']])
  })
})

describe('history and figures', () => {
  it('names the sender and their role', () => {
    expect(senderLabel({ id: 'u1', display_name: 'Paula', role: 'owner' })).toBe('Paula (owner)')
    expect(senderLabel({ id: 'u2', display_name: 'Tom', role: 'delegate' })).toBe('Tom (delegate)')
    expect(senderLabel({ id: 'u3', display_name: '', role: 'admin' })).toBe('u3 (admin)')
    expect(senderLabel(null)).toBe('—')
  })
  it('keeps the later snapshot of the channel figures whatever the arrival order', () => {
    const one = { signals: 1, placed: 3, won: 0, lost: 0, pnl: '0.00' }
    const two = { signals: 2, placed: 6, won: 1, lost: 0, pnl: '0.85' }
    expect(newerFigures(null, one)).toBe(one)
    expect(newerFigures(one, two)).toBe(two)
    expect(newerFigures(two, one)).toBe(two)
    expect(newerFigures(two, undefined)).toBe(two)
  })
})
