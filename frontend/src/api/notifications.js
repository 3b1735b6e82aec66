// Notifications (apps/api/notifications/routes.py); every call is signed.
import { api } from './client'
import { V1 } from './paths'

/** The caller's choices: {defaults, overrides, effective, digest, kinds, channels, email, telegram_linked, telegram_bot}. */
export const getPreferences = () => api.get(`${V1}/me/notifications/preferences`, { auth: true })

/** Replace the choices: {defaults: {channel: bool}, overrides: {kind: {channel: bool}}, digest}. */
export const savePreferences = (body) => api.put(`${V1}/me/notifications/preferences`, body, { auth: true })

/** In-app notifications, newest first: {items, unread}. */
export const listNotifications = (limit = 50) => api.get(`${V1}/me/notifications?limit=${limit}`, { auth: true })

/** Mark some (ids) or all (no ids) read: {unread}. */
export const markRead = (ids = []) => api.post(`${V1}/me/notifications/read`, { ids }, { auth: true })

/** A one-time Telegram link code: {code, expires_at, bot, url, command}. */
export const telegramLinkCode = () => api.post(`${V1}/me/notifications/telegram/link`, undefined, { auth: true })

/** Stop Telegram notifications. */
export const telegramUnlink = () => api.delete(`${V1}/me/notifications/telegram`, { auth: true })
