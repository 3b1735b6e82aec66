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

/**
 * Replace global fetch with a mock answering by "METHOD path" (e.g. 'GET /api/v1/orders'),
 * for pages whose components call the API in no fixed order; an unlisted call gets a 404.
 */
export function routeFetch(routes) {
  const fn = vi.fn(async (url, init = {}) => {
    const answer = routes[`${init.method ?? 'GET'} ${url}`]
    if (answer === undefined) return jsonResponse({ error: { code: 'not_found', message: `no route ${url}` } }, { status: 404 })
    return typeof answer === 'function' ? answer(url, init) : jsonResponse(answer)
  })
  vi.stubGlobal('fetch', fn)
  return fn
}
