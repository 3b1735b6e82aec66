import { defineStore } from 'pinia'
import { wsUrl } from '@/api/client'
import { newerFigures } from '@/lib/sending'
import { useAuthStore } from './auth'

// The signal WebSocket (/api/v1/ws, protocol in apps/api/signals/ws.py): authenticates
// with the in-memory access token, sends signals, collects live fan-out progress, and
// reconnects by itself with backoff, saying so in `status`. Each progress message also
// carries its channel's running figures (signals, placed, won, lost, pnl), kept in
// `figures` by channel id for the headline counters.

/** Reconnect delay: 0.5 s, 1 s, 2 s, … capped at 10 s. */
export function backoffMs(attempt) {
  return Math.min(500 * 2 ** Math.max(attempt, 0), 10000)
}

let socket = null
let retryTimer = null
let pingTimer = null
let refSeq = 0
const pending = new Map()

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
        case 'watching':
          if (!this.channels.includes(msg.channel_id)) this.channels = [...this.channels, msg.channel_id]
          break
        default:
          break
      }
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
    },
  },
})
