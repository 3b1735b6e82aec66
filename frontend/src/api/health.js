// Readiness of the backend (GET /ready): {status, checks}; a 503 still carries the checks
// in the error's body.
import { api } from './client'

export const readiness = () => api.get('/ready')
