// The one HTTP client of the dashboard: every API call goes through `request`, by way of
// the per-resource modules beside this file (auth.js, channels.js, …).
//
// - Base URL comes from VITE_API_BASE at build time; '' (the default) means same origin,
//   which is how the embedded stack serves the site (the API serves dist/ itself).
// - Sends and expects JSON.
// - Non-2xx responses throw an ApiError whose message is the API's error envelope
//   message: {"error": {"code", "message", "details"}}.
// - `auth: true` signs the call with the session's access token; a 401 renews the token
//   once and sends the call again, so an expired token never reaches the user as an error.

/** Normalise a base URL: trim whitespace and trailing slashes; undefined/null → ''. */
export function normalizeBase(base) {
  return String(base ?? '').trim().replace(/\/+$/, '')
}

/** The API base this bundle was built with ('' = same origin). Read on each call so tests can stub it. */
export function apiBase() {
  return normalizeBase(import.meta.env.VITE_API_BASE)
}

/** Join the API base and a path ('/ready', 'api/v1/x' → '<base>/api/v1/x'). Absolute URLs pass through. */
export function apiUrl(path, base = apiBase()) {
  if (/^https?:\/\//i.test(path)) return path
  const p = String(path).startsWith('/') ? path : `/${path}`
  return `${normalizeBase(base)}${p}`
}

/** ws(s):// URL of the signal WebSocket for an API base ('' = the page's own origin). */
export function wsUrl(base = apiBase(), location = globalThis.location) {
  const root = base || `${location.protocol}//${location.host}`
  return `${root.replace(/^http/i, 'ws')}/api/v1/ws`
}

/** Error thrown for any failed request. `status` is 0 for network failures. */
export class ApiError extends Error {
  constructor(message, { status = 0, code = null, details = null, body = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.details = details
    this.body = body
  }
}

async function readBody(response) {
  // 204/205 and empty bodies → null; JSON when it parses; otherwise the raw text.
  if (response.status === 204 || response.status === 205) return null
  const text = await response.text()
  if (!text) return null
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

function errorFromResponse(response, body) {
  const envelope = body && typeof body === 'object' && body.error && typeof body.error === 'object'
    ? body.error
    : null
  const fallback = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`
  const message = (envelope && typeof envelope.message === 'string' && envelope.message) || fallback
  return new ApiError(message, {
    status: response.status,
    code: envelope?.code ?? null,
    details: envelope?.details ?? null,
    body,
  })
}

/** Join a path and query parameters, leaving out those that are undefined or null. */
export function withQuery(path, params = {}) {
  const query = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) query.set(name, String(value))
  }
  const text = query.toString()
  return text ? `${path}?${text}` : path
}

// Where signed calls get their token: the auth store registers itself here, so this
// module needs no store and the store needs no second way to call the API.
let session = null

/**
 * Sign `auth: true` calls with this session from now on.
 * @param {{token: () => Promise<string>, refresh: () => Promise<string>} | null} source
 *   token(): a valid access token; refresh(): a renewed one (both reject when signed out).
 */
export function authenticateWith(source) {
  session = source
}

/**
 * Perform a request and return the parsed JSON body (null when empty).
 * @param {string} path e.g. '/ready' or '/api/v1/channels'
 * @param {{method?: string, body?: any, headers?: Record<string,string>, signal?: AbortSignal, token?: string, auth?: boolean, credentials?: RequestCredentials}} [options]
 */
export async function request(path, options = {}) {
  const { auth = false, ...rest } = options
  if (!auth) return send(path, rest)
  if (!session) throw new ApiError('Not signed in', { status: 401, code: 'unauthorized' })
  const token = await session.token()
  try {
    return await send(path, { ...rest, token })
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err
    return send(path, { ...rest, token: await session.refresh() })
  }
}

async function send(path, options) {
  const { method = 'GET', body, headers = {}, signal, token, credentials } = options
  const init = {
    method,
    headers: { Accept: 'application/json', ...headers },
    signal,
  }
  if (credentials) init.credentials = credentials
  if (token) init.headers.Authorization = `Bearer ${token}`
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json'
    init.body = JSON.stringify(body)
  }

  let response
  try {
    response = await fetch(apiUrl(path), init)
  } catch (cause) {
    if (cause?.name === 'AbortError') throw cause
    throw new ApiError(`Network error: ${cause?.message || 'request failed'}`, {
      code: 'network_error',
      cause,
    })
  }

  const data = await readBody(response)
  if (!response.ok) throw errorFromResponse(response, data)
  return data
}

export const api = {
  request,
  get: (path, options) => request(path, { ...options, method: 'GET' }),
  post: (path, body, options) => request(path, { ...options, method: 'POST', body }),
  put: (path, body, options) => request(path, { ...options, method: 'PUT', body }),
  patch: (path, body, options) => request(path, { ...options, method: 'PATCH', body }),
  delete: (path, options) => request(path, { ...options, method: 'DELETE' }),
}

export default api
