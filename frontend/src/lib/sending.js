// Safe sending, as pure logic the signal panel wires to the page: whether the panel is
// armed (an explicit toggle that lapses after ARM_TIMEOUT_MS without a send), what a key
// does in each state, and how a signal's sender is named in the history.
//
// Guarantees: a key sends nothing by itself — at most it opens the confirmation, and only
// while armed; Enter confirms and Escape cancels only while a confirmation is open; keys
// typed into a text field are never shortcuts.

/** The panel disarms itself this long after arming or the last send. */
export const ARM_TIMEOUT_MS = 60_000

/** How long the "arm the panel" hint stays after a stray key. */
export const HINT_MS = 3_000

export const ARM_HINT = 'Arm the panel to send with the keyboard'

// Inputs that take no typed text: a shortcut pressed while one has focus (the Armed
// switch, just clicked) is still a shortcut.
const NON_TEXT_INPUTS = new Set(['checkbox', 'radio', 'button', 'submit', 'reset', 'range', 'color'])

/** Whether keys pressed in ``target`` are typing, not shortcuts. */
export function isTyping(target) {
  const tag = target?.tagName
  if (tag === 'TEXTAREA' || tag === 'SELECT' || target?.isContentEditable) return true
  return tag === 'INPUT' && !NON_TEXT_INPUTS.has(String(target.type || 'text').toLowerCase())
}

/**
 * What a keydown does: `{ type: 'none' | 'search' | 'propose' | 'confirm' | 'cancel' | 'hint', direction? }`.
 * - 'propose': open the confirmation of a CALL or PUT (armed only);
 * - 'hint': a send key while disarmed — nothing is sent, the panel says how to send;
 * - 'confirm' / 'cancel': Enter / Escape while the confirmation is open.
 */
export function keyAction(event, { armed, confirming }) {
  if (event.ctrlKey || event.metaKey || event.altKey) return { type: 'none' }
  const key = String(event.key || '').toLowerCase()
  if (confirming) {
    if (key === 'enter') return { type: 'confirm' }
    if (key === 'escape') return { type: 'cancel' }
    return { type: 'none' }
  }
  const typing = isTyping(event.target)
  if (key === '/' && !typing) return { type: 'search' }
  if (typing) return { type: 'none' }
  const direction = key === 'c' || key === 'arrowup' ? 'CALL' : key === 'p' || key === 'arrowdown' ? 'PUT' : null
  if (!direction) return { type: 'none' }
  return armed ? { type: 'propose', direction } : { type: 'hint' }
}

/**
 * The Armed switch's state with its lapse timer. `onChange(armed, reason)` is called on
 * every change; reasons for disarming: 'toggle', 'timeout', 'left' (page left),
 * 'hidden' (tab hidden). Timers are injectable for tests.
 */
export function createArming({ timeoutMs = ARM_TIMEOUT_MS, onChange = () => {}, setTimer = setTimeout, clearTimer = clearTimeout } = {}) {
  let armed = false
  let timer = null

  function restart() {
    clearTimer(timer)
    timer = setTimer(() => disarm('timeout'), timeoutMs)
  }

  function arm() {
    const was = armed
    armed = true
    restart()
    if (!was) onChange(true, 'toggle')
  }

  function disarm(reason = 'toggle') {
    clearTimer(timer)
    timer = null
    if (!armed) return
    armed = false
    onChange(false, reason)
  }

  return {
    get armed() {
      return armed
    },
    arm,
    disarm,
    /** A signal went out: the 60 s start again. */
    sent() {
      if (armed) restart()
    },
  }
}

/** "Paula (owner)", "Tom (delegate)"; "—" for a signal recorded before senders were. */
export function senderLabel(sentBy) {
  if (!sentBy) return '—'
  const name = sentBy.display_name || sentBy.id
  return `${name} (${sentBy.role})`
}

/**
 * The live headline figures of a channel: the newer of two snapshots from the feed.
 * Every count in them only grows, so the snapshot with the larger total is the later
 * one, whichever order two signals' progress messages arrived in.
 */
export function newerFigures(current, incoming) {
  if (!incoming) return current ?? null
  if (!current) return incoming
  const total = (f) => (f.signals || 0) + (f.placed || 0) + (f.won || 0) + (f.lost || 0)
  return total(incoming) >= total(current) ? incoming : current
}
