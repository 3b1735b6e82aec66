"""Bodies of the signal endpoints and WebSocket messages."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from apps.api.bodies import decoder_for
from apps.api.money import Money
from apps.core.messages import Direction

ClientId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Asset = Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
ExpirySeconds = Annotated[int, msgspec.Meta(ge=15, le=86_400)]
ExpiryTolerance = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=300,
        description=(
            "How far (seconds) a broker's expiry may be from expiry_seconds when the broker"
            " cannot take it exactly (IQ Option's whole minutes); default: the router's"
            " setting. A subscriber whose broker has none that near gets a refusal that"
            " says so."
        ),
    ),
]

MIN_STAKE = Decimal("0.35")
MAX_STAKE = Decimal("50000")


class SignalIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    asset: Asset
    direction: Direction
    expiry_seconds: ExpirySeconds
    stake: Money  # at most two decimals (checked by intake)
    client_id: ClientId | None = None
    expiry_tolerance_seconds: ExpiryTolerance | None = None


class SignalAccepted(msgspec.Struct, kw_only=True):
    signal_id: str
    channel_id: str
    created_at: float
    valid_until: float
    duplicate: bool = False  # true when client_id repeated an earlier signal


class Counts(msgspec.Struct, kw_only=True):
    total: int | None
    placed: int
    rejected: int
    expired: int
    failed: int
    unknown: int


class SentByOut(msgspec.Struct, kw_only=True):
    """Who sent a signal, as recorded when it was accepted."""

    id: str
    display_name: str
    role: Literal["owner", "delegate", "admin"]


class SignalOut(msgspec.Struct, kw_only=True):
    signal_id: str
    channel_id: str
    sender_id: str
    asset: str
    direction: Direction
    expiry_seconds: int
    stake: Decimal
    created_at: float
    valid_until: float
    client_id: str | None
    counts: Counts
    done: bool
    won: int
    lost: int
    pnl: Decimal
    latency_ms: dict[str, int | None]
    # The counts per broker kind ("deriv", "iqoption"): placed, rejected, expired, …
    brokers: dict[str, dict[str, int]] = {}
    # The signal's own result (apps.core.track_record): the outcome of its first settled
    # order, and that order's profit scaled to the signal's stake; null until settled.
    outcome: Literal["won", "lost"] | None = None
    profit_at_stake: Decimal | None = None
    # Null only for a signal accepted before senders were recorded.
    sent_by: SentByOut | None = None


# --- WebSocket messages (client → server) ---------------------------------------------


class WsAuth(msgspec.Struct, tag="auth", kw_only=True):
    token: Annotated[str, msgspec.Meta(max_length=4096)]


class WsSignal(msgspec.Struct, tag="signal", kw_only=True, forbid_unknown_fields=True):
    channel_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    asset: Asset
    direction: Direction
    expiry_seconds: ExpirySeconds
    stake: Money
    client_id: ClientId | None = None
    expiry_tolerance_seconds: ExpiryTolerance | None = None
    ref: Annotated[str, msgspec.Meta(max_length=64)] | None = None  # echoed in the answer


class WsWatch(msgspec.Struct, tag="watch", kw_only=True):
    channel_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class WsPing(msgspec.Struct, tag="ping", kw_only=True):
    ref: str | None = None


WsIncoming = WsAuth | WsSignal | WsWatch | WsPing
ws_decoder = decoder_for(WsIncoming)
ws_encoder = msgspec.json.Encoder(decimal_format="string")


def ws_error(code: str, message: str, ref: str | None = None, details: Any = None) -> bytes:
    return ws_encoder.encode(
        {
            "type": "error",
            "ref": ref,
            "error": {"code": code, "message": message, "details": details},
        }
    )
