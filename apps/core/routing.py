"""The routing record: what the router needs to size and address one subscriber's order.

The API writes one Redis hash per channel (``Topology.routing_key(channel_id)``,
field = subscription id, value = a msgpack-packed :class:`RoutingRecord`); the router reads
the whole hash in one round trip per signal and never touches MongoDB. Credentials are
not in here: ``credentials_ref`` names the broker account whose sealed credentials the
broker worker fetches and decrypts itself, so Redis never holds a usable secret.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

StakeMode = Literal["fixed", "multiplier", "percent"]
BrokerKind = Literal["deriv", "iqoption"]
Direction = Literal["CALL", "PUT"]


class RoutingRecord(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """One active subscription as the router sees it (``v`` bumps on breaking changes)."""

    v: int = 1
    subscription_id: str
    channel_id: str
    subscriber_id: str
    broker_kind: BrokerKind
    broker_account_id: str
    credentials_ref: str
    currency: str
    stake_mode: StakeMode
    # fixed: amount in `currency`; multiplier: times the signal's stake; percent: % of balance.
    stake: Decimal
    max_stake: Decimal
    max_trades_per_day: int | None = None
    daily_loss_limit: Decimal | None = None
    # Empty means every asset is allowed.
    assets: tuple[str, ...] = ()
    paused: bool = False
    # Why it is paused, the router's rejection reason ("" for a pause the subscriber chose).
    paused_reason: str = ""
    # Unix seconds; the router rejects the order once now >= expires_at.
    expires_at: int
    # Stop copying while the broker balance is below this amount (None: no floor).
    balance_floor: Decimal | None = None
    # Pause the subscription once the balance falls this % below the account's peak.
    max_drawdown_percent: Decimal | None = None
    # A stake below the broker's minimum is raised to it (opt-in) instead of refused.
    round_up_to_min_stake: bool = False
    # Directions copied; empty means both.
    directions: tuple[Direction, ...] = ()
    # Opt-in: place the opposite direction of the signal.
    reverse: bool = False


# One encoder/decoder for the process: msgspec builds its fast paths once per type.
# Decimals travel as strings inside msgpack, so no float ever touches a stake.
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(RoutingRecord)


def pack_record(record: RoutingRecord) -> bytes:
    return _encoder.encode(record)


def unpack_record(raw: bytes) -> RoutingRecord:
    return _decoder.decode(raw)
