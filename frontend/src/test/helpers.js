import { vi } from 'vitest'

/** A minimal fetch Response stand-in with a JSON (or text) body. */
export function jsonResponse(body, { status = 200, statusText = '' } = {}) {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body)
  return {
    ok: status >= 200 && status < 300,
    status,
    statusText,
    headers: new Headers({ 'content-type': 'application/json' }),
    text: async () => text,
    json: async () => JSON.parse(text),
  }
}

/** Replace global fetch with a mock resolving to the given responses in order. */
export function mockFetch(...responses) {
  const fn = vi.fn()
  for (const r of responses) {
    if (r instanceof Error) fn.mockRejectedValueOnce(r)
    else fn.mockResolvedValueOnce(r)
  }
  vi.stubGlobal('fetch', fn)
  return fn
}

/** A promise plus its resolve/reject, to hold a request in flight. */
export function deferred() {
  let resolve
  let reject
  const promise = new Promise((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}
