// The API's version prefix, written once for every resource module.
export const V1 = '/api/v1'

/** One path segment from an id, escaped so an id can never reach another route. */
export const segment = (id) => encodeURIComponent(id)
