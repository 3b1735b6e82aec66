"""Notification preferences, the in-app list and Telegram linking (apps.notifier)."""
