import { describe, expect, it } from 'vitest'
import { createMemoryHistory } from 'vue-router'
import { createAppRouter } from './index'

describe('router', () => {
  it.each([
    ['/', 'home'],
    ['/login', 'login'],
    ['/channels/abc123', 'channel'],
    ['/no/such/page', 'not-found'],
  ])('%s resolves to %s', (path, name) => {
    const router = createAppRouter(createMemoryHistory())
    expect(router.resolve(path).name).toBe(name)
  })

  it('passes the channel id as a prop', () => {
    const router = createAppRouter(createMemoryHistory())
    expect(router.resolve('/channels/abc123').params).toEqual({ id: 'abc123' })
  })
})
