import { defineStore } from 'pinia'
import { wsUrl } from '@/api/client'
import { newerFigures } from '@/lib/sending'
import { DISMISS_MS, addToast, mergeTrade, toastFor } from '@/lib/toasts'
import { useAuthStore } from './auth'

// The signal WebSocket (/api/v1/ws, protocol in apps/api/signals/ws.py): authenticates
// with the in-memory access token, sends signals, collects live fan-out progress, and
// reconnects by itself with backoff, saying so in `status`. Each progress message also
// carries its channel's running figures (signals, placed, won, lost, pnl), kept in
// `figures` by channel id for the headline counters.
//
// Every signed-in user's socket also receives their own trades as they execute ("trade":
// a TradeOut, placed / refused / settled): `trades` holds the newest state of each by
// order_id (pushed non-null fields over what was known), and `toasts` announces what is
// new (lib/toasts.js collapses bursts), shown by components/ToastStack.vue. What the
// socket could not deliver (a "resync", or a reconnect: pushes made while it was down are
// lost) bumps `resyncs`; views that list trades watch it and re-read GET /api/v1/orders.

/** Reconnect delay: 0.5 s, 1 s, 2 s, … capped at 10 s. */
export function backoffMs(attempt) {
  return Math.min(500 * 2 ** Math.max(attempt, 0), 10000)
}

let socket = null
let retryTimer = null
let pingTimer = null
let refSeq = 0
const pending = new Map()
const dismissals = new Map()
let toastSeq = 0

export const useLiveStore = defineStore('live', {
  state: () => ({
    // idle | connecting | open | reconnecting | closed
    status: 'idle',
    attempts: 0,
    channels: [],
    progress: {},
    figures: {},
    lastError: null,
    nextRetryAt: null,
    // order_id → the newest TradeOut pushed this session
    trades: {},
    // what ToastStack shows: {id, kind, tone, text, count, createdAt, updatedAt, at}
    toasts: [],
    // bumped when pushed trades may have been missed: re-read the list
    resyncs: 0,
    readyBefore: false,
  }),
  getters: {
    connected: (s) => s.status === 'open',
  },
  actions: {
    connect() {
      if (socket && (socket.readyState === 0 || socket.readyState === 1)) return
      clearTimeout(retryTimer)
      this.status = this.attempts ? 'reconnecting' : 'connecting'
      const auth = useAuthStore()
      let ws
      try {
        ws = new WebSocket(wsUrl())
      } catch (err) {
        this.lastError = String(err?.message || err)
        this._scheduleRetry()
        return
      }
      socket = ws
      ws.onopen = async () => {
        try {
          ws.send(JSON.stringify({ type: 'auth', token: await auth.token() }))
        } catch {
          ws.close(4401, 'no session')
        }
      }
      ws.onmessage = (event) => this._receive(JSON.parse(event.data))
      ws.onclose = (event) => {
        if (socket !== ws) return
        socket = null
        clearInterval(pingTimer)
        for (const [, p] of pending) p.reject(new Error('connection lost before the signal was confirmed'))
        pending.clear()
        if (this.status === 'closed') return
        this.lastError = event.reason || `connection closed (${event.code})`
        if (!auth.signedIn) {
          this.status = 'closed'
          return
        }
        this._scheduleRetry()
      }
    },
    _scheduleRetry() {
      const delay = backoffMs(this.attempts)
      this.attempts += 1
      this.status = 'reconnecting'
      this.nextRetryAt = Date.now() + delay
      retryTimer = setTimeout(() => this.connect(), delay)
    },
    _receive(msg) {
      switch (msg.type) {
        case 'ready':
          // A socket that was ready before missed whatever happened while it was down.
          if (this.readyBefore) this.resyncs += 1
          this.readyBefore = true
          this.status = 'open'
          this.attempts = 0
          this.lastError = null
          this.channels = msg.channels || []
          clearInterval(pingTimer)
          pingTimer = setInterval(() => this._send({ type: 'ping' }), 25000)
          break
        case 'accepted':
        case 'error': {
          const p = pending.get(msg.ref)
          if (p) {
            pending.delete(msg.ref)
            if (msg.type === 'accepted') p.resolve(msg)
            else p.reject(Object.assign(new Error(msg.error?.message || 'refused'), { code: msg.error?.code }))
          } else if (msg.type === 'error') {
            this.lastError = msg.error?.message || 'error'
          }
          // Ended on the server (expired, or signed out everywhere): renew or sign out.
          if (msg.type === 'error' && msg.error?.code === 'session_ended') useAuthStore().sessionEnded(msg.error.message)
          break
        }
        case 'progress':
          this.progress = { ...this.progress, [msg.signal_id]: msg }
          if (msg.channel) {
            this.figures = { ...this.figures, [msg.channel_id]: newerFigures(this.figures[msg.channel_id], msg.channel) }
          }
          break
        case 'trade':
          this._trade(msg.trade)
          break
        case 'resync':
          this.resyncs += 1
          break
        case 'watching':
          if (!this.channels.includes(msg.channel_id)) this.channels = [...this.channels, msg.channel_id]
          break
        default:
          break
      }
    },
    _trade(pushed) {
      if (!pushed?.order_id) return
      const known = this.trades[pushed.order_id]
      const merged = mergeTrade(known, pushed)
      this.trades = { ...this.trades, [pushed.order_id]: merged }
      const toast = toastFor(known, merged)
      if (toast) this.toast(toast)
    },
    /** Show a toast (or fold it into a recent one of its kind) and arm its dismissal. */
    toast(toast, now = Date.now()) {
      const { toasts, id } = addToast(this.toasts, toast, now, { nextId: `toast${++toastSeq}` })
      this.toasts = toasts
      for (const [shown, timer] of dismissals) {
        if (!toasts.some((t) => t.id === shown)) {
          clearTimeout(timer)
          dismissals.delete(shown)
        }
      }
      clearTimeout(dismissals.get(id))
      dismissals.set(id, setTimeout(() => this.dismissToast(id), DISMISS_MS[toast.kind] ?? 8000))
    },
    dismissToast(id) {
      clearTimeout(dismissals.get(id))
      dismissals.delete(id)
      this.toasts = this.toasts.filter((t) => t.id !== id)
    },
    _send(message) {
      if (!socket || socket.readyState !== 1) return false
      socket.send(JSON.stringify(message))
      return true
    },
    /** Re-authenticate an open socket after the access token was renewed. */
    reauth(token) {
      if (this.status === 'open' && token) this._send({ type: 'auth', token })
    },
    watch(channelId) {
      this._send({ type: 'watch', channel_id: channelId })
    },
    /** Send a signal; resolves with the "accepted" message, rejects with the API's error. */
    sendSignal(signal) {
      const ref = `r${++refSeq}`
      return new Promise((resolve, reject) => {
        if (this.status !== 'open') {
          reject(new Error('not connected — reconnecting to the server'))
          return
        }
        pending.set(ref, { resolve, reject })
        this._send({ type: 'signal', ref, ...signal })
        setTimeout(() => {
          if (pending.delete(ref)) reject(new Error('no answer from the server within 10 s'))
        }, 10000)
      })
    },
    disconnect() {
      this.status = 'closed'
      clearTimeout(retryTimer)
      clearInterval(pingTimer)
      const ws = socket
      socket = null
      ws?.close(1000, 'signed out')
      this.channels = []
      this.attempts = 0
      // The next user of this tab sees nothing of this one's trades.
      for (const timer of dismissals.values()) clearTimeout(timer)
      dismissals.clear()
      this.trades = {}
      this.toasts = []
      this.readyBefore = false
    },
  },
})
