import { describe, expect, it } from 'vitest'
import { nextTick } from 'vue'
import { ApiError } from '@/api/client'
import { deferred } from '@/test/helpers'
import { hasData, useAsync } from './useAsync'

describe('useAsync', () => {
  it('is loading before the first call settles, then holds its result', async () => {
    const answer = deferred()
    const state = useAsync(() => answer.promise, { initial: [] })
    expect(state.loading).toBe(true)
    expect(state.busy).toBe(false)
    const running = state.run()
    expect(state.busy).toBe(true)
    answer.resolve([1, 2])
    await expect(running).resolves.toBe(true)
    expect(state.data).toEqual([1, 2])
    expect(state.loading).toBe(false)
    expect(state.busy).toBe(false)
    expect(state.error).toBeNull()
  })

  it('passes its arguments on to the task', async () => {
    const state = useAsync(async (a, b) => a + b)
    await state.run(2, 3)
    expect(state.data).toBe(5)
  })

  it('keeps the last result on screen while it reloads', async () => {
    const answer = deferred()
    let calls = 0
    const state = useAsync(() => (++calls === 1 ? Promise.resolve(['a']) : answer.promise), { initial: [] })
    await state.run()
    const reload = state.run()
    expect(state.busy).toBe(true)
    expect(state.loading).toBe(false)
    answer.resolve(['a', 'b'])
    await reload
    expect(state.data).toEqual(['a', 'b'])
  })

  it('turns a failure into its message and never rejects', async () => {
    const state = useAsync(async () => { throw new ApiError('Channel c9 does not exist', { status: 404 }) })
    await expect(state.run()).resolves.toBe(false)
    expect(state.error).toBe('Channel c9 does not exist')
    expect(state.loading).toBe(false)
  })

  it('says a failure in its own words when asked', async () => {
    const state = useAsync(async () => { throw new ApiError('x', { status: 404 }) }, {
      message: (err) => (err.status === 404 ? 'This channel does not exist.' : err.message),
    })
    await state.run()
    expect(state.error).toBe('This channel does not exist.')
  })

  it('puts an error that names a form field beside that field', async () => {
    const state = useAsync(async () => { throw new ApiError('Expected `str` of length >= 8 - at `$.password`', { status: 400 }) }, {
      fields: ['email', 'password'],
    })
    await state.run()
    expect(state.fieldErrors).toEqual({ password: 'Expected `str` of length >= 8' })
    expect(state.error).toBeNull()
    const other = useAsync(async () => { throw new ApiError('too many attempts', { status: 429 }) }, { fields: ['email'] })
    await other.run()
    expect(other.fieldErrors).toEqual({})
    expect(other.error).toBe('too many attempts')
  })

  it('clears the error when a call starts, or with keepError only when one succeeds', async () => {
    let fail = true
    const task = async () => { if (fail) throw new Error('down'); return ['x'] }
    const plain = useAsync(task, { initial: [] })
    const steady = useAsync(task, { initial: [], keepError: true })
    await plain.run()
    await steady.run()
    fail = false
    const a = plain.run()
    const b = steady.run()
    expect(plain.error).toBeNull()
    expect(plain.loading).toBe(true)
    expect(steady.error).toBe('down')
    expect(steady.loading).toBe(false)
    await Promise.all([a, b])
    expect(steady.error).toBeNull()
  })

  it('lets only the latest call write, so a slow answer never replaces a newer one', async () => {
    const slow = deferred()
    const fast = deferred()
    const answers = [slow, fast]
    const state = useAsync(() => answers.shift().promise)
    const first = state.run()
    const second = state.run()
    fast.resolve('new')
    await expect(second).resolves.toBe(true)
    slow.resolve('old')
    await expect(first).resolves.toBe(false)
    expect(state.data).toBe('new')
  })

  it('lets a view update its data in place, reactively', async () => {
    const state = useAsync(async () => [{ id: 1, paused: false }], { initial: [] })
    await state.run()
    state.data = state.data.map((s) => ({ ...s, paused: true }))
    await nextTick()
    expect(state.data[0].paused).toBe(true)
  })

  it('counts a non-empty list or any value as something to show', () => {
    expect([[], null, undefined].map(hasData)).toEqual([false, false, false])
    expect([[1], {}, 0, ''].map(hasData)).toEqual([true, true, true, true])
  })
})
