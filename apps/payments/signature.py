"""Stripe's webhook signature: ``Stripe-Signature: t=<unix s>,v1=<hex>``.

``v1`` is HMAC-SHA256 keyed with the endpoint's secret over ``"<t>.<raw body>"``. A
delivery is genuine only if one of its ``v1`` values matches (compared in constant time)
and ``t`` lies within the tolerance of now, so a captured delivery cannot be replayed
later. Pure functions: the clock is an argument.
"""

from __future__ import annotations

import hashlib
import hmac

# Stripe's own libraries reject a timestamp further than this from now.
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The delivery is not signed by the endpoint's secret, or is too old or too new."""


def compute(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign_header(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` value Stripe sends with ``payload`` at ``timestamp``."""
    return f"t={timestamp},v1={compute(payload, secret, timestamp)}"


def verify(
    payload: bytes,
    header: str | None,
    secret: str,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise :class:`SignatureError` unless ``header`` signs ``payload`` with ``secret``
    at a time within ``tolerance`` seconds of ``now``."""
    if not secret:
        raise SignatureError("no webhook secret is configured")
    if not header:
        raise SignatureError("the Stripe-Signature header is missing")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("the Stripe-Signature timestamp is not a number") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("the Stripe-Signature header has no timestamp or no v1 signature")
    expected = compute(payload, secret, timestamp)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("the signature does not match the payload")
    if abs(now - timestamp) > tolerance:
        raise SignatureError("the signature's timestamp is outside the tolerance")
