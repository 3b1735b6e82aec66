// The state of one asynchronous call, the same way on every page: what it returned, why it
// failed, whether it is on its way. Views hand `loading` and `error` to <AsyncState> and
// `busy` to their buttons, and never write their own try/catch around an API call.
import { computed, reactive, ref } from 'vue'
import { fieldErrors as errorsByField } from '@/lib/format'

/** Whether a value is something to show: a non-empty list or any other non-null value. */
export function hasData(value) {
  return Array.isArray(value) ? value.length > 0 : value != null
}

/**
 * @param {(...args: any[]) => Promise<any>} task the call; `run(...args)` passes its arguments on.
 * @param {object} [options]
 * @param {any} [options.initial] `data` before the first success (e.g. [] for a list).
 * @param {string[]} [options.fields] form fields: an error that names one of them lands in
 *   `fieldErrors` beside that field, and `error` stays null; other errors go to `error`.
 * @param {(err: Error) => string} [options.message] the text shown for a failure.
 * @param {boolean} [options.keepError] keep the last error on screen until a call succeeds,
 *   for polled loads, so the page does not flicker between error and spinner.
 * @returns a reactive object:
 *   data: the last success's result (writable, for a view that updates it in place);
 *   error: the last failure's text, or null;
 *   errorCode: the API's code of the last failure ("broker_rejected", …), or null;
 *   fieldErrors: {field: text} for `fields`;
 *   busy: a call is on its way (disable the button that started it);
 *   loading: a call is on its way, or has yet to start, and there is nothing to show
 *     instead — no data and no error (a reload keeps the last result on screen);
 *   run(...args): resolves to true when the call succeeded, false when it failed or a
 *     later run overtook it; it never rejects.
 */
export function useAsync(task, { initial = null, fields = null, message = (err) => err?.message || String(err), keepError = false } = {}) {
  const data = ref(initial)
  const error = ref(null)
  const errorCode = ref(null)
  const fieldErrors = ref({})
  const busy = ref(false)
  const settled = ref(false)
  // Only the latest run writes the state, so a slow answer never replaces a newer one.
  let latest = 0

  async function run(...args) {
    const call = ++latest
    busy.value = true
    if (!keepError) error.value = null
    fieldErrors.value = {}
    try {
      const value = await task(...args)
      if (call !== latest) return false
      data.value = value
      error.value = null
      errorCode.value = null
      return true
    } catch (err) {
      if (call !== latest) return false
      const byField = fields ? errorsByField(err, fields) : {}
      fieldErrors.value = byField
      error.value = Object.keys(byField).length ? null : message(err)
      errorCode.value = err?.code ?? null
      return false
    } finally {
      if (call === latest) {
        busy.value = false
        settled.value = true
      }
    }
  }

  const loading = computed(() => (busy.value || !settled.value) && !hasData(data.value) && !error.value)
  return reactive({ data, error, errorCode, fieldErrors, busy, loading, run })
}
