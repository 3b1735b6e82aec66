"""Stripe's keys from settings, or in development generated once into DATA_DIR (0600),
where the API and the stand-in `copier up` starts both find the same ones."""

from __future__ import annotations

import secrets

from apps.core.dev_keys import load_or_create
from apps.core.settings import Settings


def secret_key(settings: Settings) -> str:
    if settings.stripe_secret_key:
        return settings.stripe_secret_key
    path = settings.data_dir / "stripe_secret_key"
    return load_or_create(
        path, lambda: f"sk_test_{secrets.token_hex(24)}".encode(), "Stripe secret key"
    ).decode()


def webhook_secret(settings: Settings) -> str:
    if settings.stripe_webhook_secret:
        return settings.stripe_webhook_secret
    path = settings.data_dir / "stripe_webhook_secret"
    return load_or_create(
        path, lambda: f"whsec_{secrets.token_hex(24)}".encode(), "Stripe webhook secret"
    ).decode()


def webhook_url(settings: Settings) -> str:
    """Where the stand-in sends its webhooks: the setting, or this stack's API."""
    return (
        settings.stripe_sim_webhook_url
        or f"http://127.0.0.1:{settings.api_port}/api/v1/payments/stripe/webhook"
    )
