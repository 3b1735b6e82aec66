"""Signal intake: permission, validation, de-duplication, publish — and nothing that waits
for the fan-out.

The commit point of a signal is JetStream's acknowledgement of the publish (file storage,
fsync always): the API answers right after it. The MongoDB record of the signal is written
after the answer, off the request path, because the embedded MongoDB costs milliseconds
per insert and the accept latency budget is 10 ms.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from odmantic import AIOEngine, Field, Index, Model
from redis.asyncio import Redis

from apps.api.auth.guards import Principal
from apps.api.errors import BadRequest, Forbidden, NotFound, ServiceUnavailable
from apps.api.live import LiveRelay
from apps.api.models import Channel
from apps.api.signals.schemas import MAX_STAKE, MIN_STAKE, SignalAccepted
from apps.brokers.assets import is_canonical_asset
from apps.core.ids import new_id
from apps.core.messages import Direction, Signal, encode, signal_decoder
from apps.core.settings import Settings
from apps.core.topology import Topology

log = logging.getLogger("api.signals")

CLIENT_ID_TTL_SECONDS = 24 * 3600
ACL_TTL_SECONDS = 300
SIGNAL_CACHE_SECONDS = 3600


class SignalRecord(Model):
    """The signal as MongoDB keeps it (statistics live in `signal_stats`, by the ledger)."""

    id: str = Field(primary_field=True)
    channel_id: str
    sender_id: str
    asset: str
    direction: str
    expiry_seconds: int
    stake: Decimal
    created_at: float
    valid_until: float
    client_id: str | None = None

    model_config = {
        "collection": "signals",
        "indexes": lambda: [Index(SignalRecord.channel_id, SignalRecord.created_at)],
    }


class ChannelAcl(msgspec.Struct, frozen=True):
    """Who may signal a channel, cached in Redis so intake needs no MongoDB read."""

    owner_id: str
    delegates: list[str]
    active: bool

    def allows(self, principal: Principal) -> bool:
        """Owner, delegate or admin: the same rule as can_signal_channel."""
        return principal.is_admin or principal.id in (self.owner_id, *self.delegates)


_acl_encoder = msgspec.msgpack.Encoder()
_acl_decoder = msgspec.msgpack.Decoder(ChannelAcl)


def acl_key(topology: Topology, channel_id: str) -> str:
    return topology.key("channel-acl", channel_id)


async def forget_channel_acl(redis: Redis, topology: Topology, channel_id: str) -> None:
    """Call after any change to a channel's owner, delegates or status."""
    await redis.delete(acl_key(topology, channel_id))


@dataclass
class SignalIntake:
    settings: Settings
    topology: Topology
    nats: NATS
    redis: Redis
    db: AIOEngine
    live: LiveRelay | None = None

    async def channel_acl(self, channel_id: str) -> ChannelAcl | None:
        key = acl_key(self.topology, channel_id)
        raw: bytes | None = await self.redis.get(key)  # type: ignore[assignment]
        if raw is not None:
            return _acl_decoder.decode(raw)
        channel = await self.db.find_one(Channel, Channel.id == channel_id)
        if channel is None:
            return None
        acl = ChannelAcl(channel.owner_id, list(channel.delegates), channel.status == "active")
        await self.redis.set(key, _acl_encoder.encode(acl), ex=ACL_TTL_SECONDS)
        return acl

    async def may_signal(self, principal: Principal, channel_id: str) -> bool:
        acl = await self.channel_acl(channel_id)
        return acl is not None and acl.active and acl.allows(principal)

    async def accept(
        self,
        principal: Principal,
        channel_id: str,
        *,
        asset: str,
        direction: Direction,
        expiry_seconds: int,
        stake: Decimal,
        client_id: str | None,
    ) -> SignalAccepted:
        acl = await self.channel_acl(channel_id)
        if acl is None or not acl.active:
            raise NotFound("channel not found")
        if not acl.allows(principal):
            raise Forbidden("only the channel's owner and its delegates may send signals")
        stake = validate_stake(stake)
        if not is_canonical_asset(asset):
            raise BadRequest(
                f"unknown asset {asset!r}", code="unknown_asset", details={"field": "asset"}
            )

        now = time.time()
        signal = Signal(
            signal_id=new_id(),
            channel_id=channel_id,
            sender_id=principal.id,
            asset=asset,
            direction=direction,
            expiry_seconds=expiry_seconds,
            stake=stake,
            created_at=now,
            valid_until=now + self.settings.signal_validity_seconds,
            client_id=client_id,
        )
        payload = encode(signal)
        if client_id is not None:
            # A retried click (same sender, same client_id) gets the first signal back.
            key = self.topology.key("client-id", principal.id, client_id)
            first: bytes | None = await self.redis.set(  # type: ignore[assignment]
                key, payload, nx=True, ex=CLIENT_ID_TTL_SECONDS, get=True
            )
            if first is not None:
                earlier = signal_decoder.decode(first)
                return SignalAccepted(
                    signal_id=earlier.signal_id,
                    channel_id=earlier.channel_id,
                    created_at=earlier.created_at,
                    valid_until=earlier.valid_until,
                    duplicate=True,
                )
        try:
            # The Redis copy answers GET /signals/{id} until the MongoDB copy has landed.
            await asyncio.gather(
                self.nats.jetstream().publish(
                    self.topology.signal_subject(channel_id),
                    payload,
                    headers={"Nats-Msg-Id": signal.signal_id},
                    timeout=2,
                ),
                self.redis.set(
                    self.topology.key("sig", signal.signal_id, "signal"),
                    payload,
                    ex=SIGNAL_CACHE_SECONDS,
                ),
            )
        except Exception as exc:
            if client_id is not None:  # nothing was sent: the retry must be able to send
                await self.redis.delete(self.topology.key("client-id", principal.id, client_id))
            log.error("publishing signal %s failed: %s", signal.signal_id, exc)
            raise ServiceUnavailable("the signal could not be queued; nothing was sent") from exc
        _background(self._store(signal))
        if self.live is not None:
            self.live.watch(channel_id, signal.signal_id)
        return SignalAccepted(
            signal_id=signal.signal_id,
            channel_id=channel_id,
            created_at=signal.created_at,
            valid_until=signal.valid_until,
        )

    async def find(self, signal_id: str) -> SignalRecord | None:
        record = await self.db.find_one(SignalRecord, SignalRecord.id == signal_id)
        if record is not None:
            return record
        raw: bytes | None = await self.redis.get(  # type: ignore[assignment]
            self.topology.key("sig", signal_id, "signal")
        )
        return None if raw is None else record_of(signal_decoder.decode(raw))

    async def _store(self, signal: Signal) -> None:
        record = record_of(signal)
        for attempt in range(5):
            try:
                await self.db.save(record)
                return
            except Exception:
                log.warning("storing signal %s failed (try %d)", signal.signal_id, attempt + 1)
                await asyncio.sleep(0.2 * 2**attempt)
        log.error("signal %s is in JetStream but not in MongoDB", signal.signal_id)


def record_of(signal: Signal) -> SignalRecord:
    return SignalRecord(
        id=signal.signal_id,
        channel_id=signal.channel_id,
        sender_id=signal.sender_id,
        asset=signal.asset,
        direction=signal.direction.value,
        expiry_seconds=signal.expiry_seconds,
        stake=signal.stake,
        created_at=signal.created_at,
        valid_until=signal.valid_until,
        client_id=signal.client_id,
    )


def validate_stake(stake: Decimal) -> Decimal:
    try:
        if not stake.is_finite():
            raise InvalidOperation
        exponent = stake.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -2:
            raise BadRequest(
                "stake has more than two decimals",
                code="invalid_stake",
                details={"field": "stake"},
            )
    except InvalidOperation as exc:
        raise BadRequest("stake must be a number", code="invalid_stake") from exc
    if not MIN_STAKE <= stake <= MAX_STAKE:
        raise BadRequest(
            f"stake must be between {MIN_STAKE} and {MAX_STAKE}",
            code="invalid_stake",
            details={"field": "stake", "min": str(MIN_STAKE), "max": str(MAX_STAKE)},
        )
    return stake


_tasks: set[asyncio.Task[Any]] = set()


def _background(coro: Any) -> None:
    task = asyncio.create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
