// Light and dark mode: Bootstrap 5.3's `data-bs-theme` on <html>. The choice is "light",
// "dark" or "system" (the default: follow the device's prefers-color-scheme, live), kept
// in localStorage so every tab and the next visit start with it. The pure functions below
// decide; `startTheme` and `chooseTheme` do the I/O (storage, media query, attribute).
import { ref } from 'vue'

export const CHOICES = ['light', 'dark', 'system']
export const STORAGE_KEY = 'copier-theme'
const QUERY = '(prefers-color-scheme: dark)'

/** The stored choice, or "system" when there is none (or it is not one we know). */
export function readChoice(storage) {
  try {
    const value = storage?.getItem(STORAGE_KEY)
    return CHOICES.includes(value) ? value : 'system'
  } catch {
    return 'system' // storage blocked (private mode, policies): follow the system
  }
}

/** The theme to show: the choice itself, or the system's when the choice is "system". */
export function resolveTheme(choice, systemDark) {
  if (choice === 'light' || choice === 'dark') return choice
  return systemDark ? 'dark' : 'light'
}

/** The next choice of the navbar's toggle: light → dark → system → light. */
export function nextChoice(choice) {
  return CHOICES[(CHOICES.indexOf(choice) + 1) % CHOICES.length]
}

/** How the toggle names a choice (its title and label). */
export function choiceLabel(choice) {
  return { light: 'Light', dark: 'Dark', system: 'System' }[choice] ?? 'System'
}

/** Chart ink for a theme: axis text, grid lines and the zero line, readable on its body. */
export function chartInk(theme) {
  return theme === 'dark'
    ? { text: 'rgba(222, 226, 230, 0.85)', grid: 'rgba(255, 255, 255, 0.1)', zero: 'rgba(255, 255, 255, 0.45)' }
    : { text: 'rgba(33, 37, 41, 0.85)', grid: 'rgba(0, 0, 0, 0.08)', zero: 'rgba(0, 0, 0, 0.35)' }
}

// The page's state, for components that draw with the theme's colours (charts).
export const themeChoice = ref('system')
export const currentTheme = ref('light')

let media = null

function apply(doc) {
  currentTheme.value = resolveTheme(themeChoice.value, !!media?.matches)
  doc?.documentElement?.setAttribute('data-bs-theme', currentTheme.value)
}

/**
 * Apply the stored choice and follow the system's changes (while the choice is "system")
 * and other tabs' choices (the storage event). Call once, before the app mounts.
 */
export function startTheme({ win = globalThis.window, doc = globalThis.document } = {}) {
  themeChoice.value = readChoice(win?.localStorage)
  media = win?.matchMedia ? win.matchMedia(QUERY) : null
  media?.addEventListener?.('change', () => apply(doc))
  win?.addEventListener?.('storage', (event) => {
    if (event.key !== STORAGE_KEY) return
    themeChoice.value = readChoice(win.localStorage)
    apply(doc)
  })
  apply(doc)
}

/** The user's choice: shown now, remembered for the next visit and the other tabs. */
export function chooseTheme(choice, { win = globalThis.window, doc = globalThis.document } = {}) {
  themeChoice.value = CHOICES.includes(choice) ? choice : 'system'
  try {
    if (themeChoice.value === 'system') win?.localStorage?.removeItem(STORAGE_KEY)
    else win?.localStorage?.setItem(STORAGE_KEY, themeChoice.value)
  } catch {
    // Not remembered when storage is blocked; the page still shows it.
  }
  apply(doc)
}
