"""A local stand-in for Telegram's Bot API (apps.notifier.telegram_sim.server)."""
