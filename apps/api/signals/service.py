"""Signal intake: permission, validation, de-duplication, publish — and nothing that waits
for the fan-out.

The commit point of a signal is JetStream's acknowledgement of the publish (file storage,
fsync always): the API answers right after it. The MongoDB record of the signal is written
after the answer, off the request path, because the embedded MongoDB costs milliseconds
per insert and the accept latency budget is 10 ms. That write only makes the signal
listed at once: the ledger writes the record of every signal the stream holds
(:mod:`apps.ledger.signals`), so one whose PubAck was lost, or whose API died after it,
is recorded too.

Every signal names who sent it (``sent_by``: id, display name, owner / delegate / admin),
stamped here from the caller's cached facts and the channel's ACL once the checks pass,
and carried in the published message: the ledger's record of a signal whose API died
after the PubAck names the same sender, and a later rename or removal rewrites nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from odmantic import AIOEngine
from redis.asyncio import Redis

from apps.api.auth.principals import Authenticator, Principal
from apps.api.auth.tokens import TokenClaims
from apps.api.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    NotFound,
    ServiceUnavailable,
)
from apps.api.live import LiveRelay
from apps.api.models import Channel
from apps.api.refresh import RefreshAhead, is_due
from apps.api.signals.schemas import MAX_STAKE, MIN_STAKE, SignalAccepted
from apps.core import metrics
from apps.core.assets import is_canonical_asset
from apps.core.ids import new_id
from apps.core.messages import (
    Direction,
    Sender,
    SenderRole,
    Signal,
    encode,
    signal_decoder,
)
from apps.core.records import SignalRecord, record_of
from apps.core.settings import Settings
from apps.core.topology import Topology

log = logging.getLogger("api.signals")

CLIENT_ID_TTL_SECONDS = 24 * 3600
# Seconds to wait for one PubAck. A publish whose PubAck is late is sent once more with
# the same Nats-Msg-Id (JetStream drops it as a duplicate if the first was stored).
PUBLISH_TIMEOUT = 2.0
PUBLISH_ATTEMPTS = 2
# Answers from which nothing was stored: no stream listens, or JetStream refused it.
NOT_STORED = (
    nats.errors.NoRespondersError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.APIError,
)
ACL_TTL_SECONDS = 300
SIGNAL_CACHE_SECONDS = 3600


class NotStored(Exception):
    """JetStream answered that it did not store the signal."""


class NoAnswer(Exception):
    """No publish attempt was answered: JetStream may or may not hold the signal."""


class ChannelAcl(msgspec.Struct, frozen=True):
    """Who may signal a channel, cached in Redis so intake needs no MongoDB read.

    An entry older than two thirds of its TTL is still used and read again in the
    background (:mod:`apps.api.refresh`), so that no signal waits for MongoDB."""

    owner_id: str
    delegates: list[str]
    active: bool
    read_at: float = 0.0  # when it was read from MongoDB (epoch s)

    @classmethod
    def of(cls, channel: Channel) -> ChannelAcl:
        return cls(
            channel.owner_id, list(channel.delegates), channel.status == "active", time.time()
        )

    def allows(self, principal: Principal) -> bool:
        """Owner, delegate or admin: the same rule as can_signal_channel."""
        return principal.is_admin or principal.id in (self.owner_id, *self.delegates)


_acl_encoder = msgspec.msgpack.Encoder()
_acl_decoder = msgspec.msgpack.Decoder(ChannelAcl)


async def channel_acl_changed(redis: Redis, topology: Topology, channel: Channel) -> None:
    """Call after saving any change to a channel's owner, delegates or status.

    Writes the new ACL through rather than deleting the entry: intake fills a missing
    entry from MongoDB with SET NX, so a signal that read the old channel just before
    the change cannot put the old ACL back (a removed delegate keeping the right for the
    entry's 5 minutes)."""
    await redis.set(
        topology.channel_acl_key(channel.id),
        _acl_encoder.encode(ChannelAcl.of(channel)),
        ex=ACL_TTL_SECONDS,
    )


@dataclass
class SignalIntake:
    settings: Settings
    topology: Topology
    nats: NATS
    redis: Redis
    db: AIOEngine
    authenticator: Authenticator
    live: LiveRelay | None = None

    def __post_init__(self) -> None:
        self.jetstream = self.nats.jetstream()
        self.refreshes = RefreshAhead(self.redis)

    async def channel_acl(self, channel_id: str) -> ChannelAcl | None:
        raw: bytes | None = await self.redis.get(self.topology.channel_acl_key(channel_id))  # type: ignore[assignment]
        return await self.acl_from(channel_id, raw)

    async def acl_from(self, channel_id: str, raw: bytes | None) -> ChannelAcl | None:
        """The channel's ACL from its cached value ``raw``, or from MongoDB on a miss."""
        if raw is not None:
            acl = _acl_decoder.decode(raw)
            if is_due(acl.read_at, ACL_TTL_SECONDS):
                self.refreshes.refresh(
                    self.topology.channel_acl_key(channel_id),
                    raw,
                    lambda: self._read_acl(channel_id),
                    ACL_TTL_SECONDS,
                )
            return acl
        channel = await self.db.find_one(Channel, Channel.id == channel_id)
        if channel is None:
            return None
        acl = ChannelAcl.of(channel)
        # NX: a change written through meanwhile (channel_acl_changed) is fresher than ours.
        fresher: bytes | None = await self.redis.set(  # type: ignore[assignment]
            self.topology.channel_acl_key(channel_id),
            _acl_encoder.encode(acl),
            ex=ACL_TTL_SECONDS,
            nx=True,
            get=True,
        )
        return acl if fresher is None else _acl_decoder.decode(fresher)

    async def _read_acl(self, channel_id: str) -> bytes | None:
        """The channel's ACL entry, read from MongoDB now (``None``: the channel is gone)."""
        channel = await self.db.find_one(Channel, Channel.id == channel_id)
        return None if channel is None else _acl_encoder.encode(ChannelAcl.of(channel))

    async def may_signal(self, principal: Principal, channel_id: str) -> bool:
        acl = await self.channel_acl(channel_id)
        return acl is not None and acl.active and acl.allows(principal)

    async def accept(
        self,
        claims: TokenClaims,
        channel_id: str,
        *,
        asset: str,
        direction: Direction,
        expiry_seconds: int,
        stake: Decimal,
        client_id: str | None,
        expiry_tolerance_seconds: int | None,
    ) -> SignalAccepted:
        """:meth:`_accept`, counted in ``copier_signals_total`` by outcome."""
        try:
            accepted = await self._accept(
                claims,
                channel_id,
                asset=asset,
                direction=direction,
                expiry_seconds=expiry_seconds,
                stake=stake,
                client_id=client_id,
                expiry_tolerance_seconds=expiry_tolerance_seconds,
            )
        except ApiError as exc:
            if self.settings.metrics_enabled:
                metrics.signals_total.labels("refused").inc()
                metrics.signals_refused_total.labels(metrics.refusal_reason(exc.status_code)).inc()
            raise
        if self.settings.metrics_enabled:
            outcome = "duplicate" if accepted.duplicate else "accepted"
            metrics.signals_total.labels(outcome).inc()
        return accepted

    async def _accept(
        self,
        claims: TokenClaims,
        channel_id: str,
        *,
        asset: str,
        direction: Direction,
        expiry_seconds: int,
        stake: Decimal,
        client_id: str | None,
        expiry_tolerance_seconds: int | None,
    ) -> SignalAccepted:
        """Check and queue one signal of the caller of ``claims`` (a verified access token).

        Redis is asked once, before the publish, in one pipeline: the channel's ACL, the
        caller's facts and session revocation (:class:`Authenticator`), the signal's cache
        entry, and the ``client_id`` reservation. The writes are made before the verdict
        is known so that they cost no round trip of their own; a refused signal takes them
        back before its answer goes out. Then the JetStream publish, whose PubAck is the
        commit point. The checks answer in the order they always did: 401, 404, 403, 400.
        """
        try:
            stake = validate_stake(stake)
            validate_asset(asset)
            invalid: BadRequest | None = None
        except BadRequest as exc:
            invalid = exc
        signal = (
            None
            if invalid
            else self._signal(
                claims.subject,
                channel_id,
                asset,
                direction,
                expiry_seconds,
                stake,
                client_id,
                expiry_tolerance_seconds,
            )
        )
        auth_keys = self.authenticator.lookup_keys(claims)
        pipe = self.redis.pipeline(transaction=False)
        pipe.mget(self.topology.channel_acl_key(channel_id), *auth_keys)
        if signal is not None:
            payload = encode(signal)
            pipe.set(
                self.topology.signal_copy_key(signal.signal_id), payload, ex=SIGNAL_CACHE_SECONDS
            )
            if client_id is not None:
                # A retried click (same sender, same client_id) gets the first signal back.
                pipe.set(
                    self.topology.client_id_key(claims.subject, client_id),
                    payload,
                    nx=True,
                    ex=CLIENT_ID_TTL_SECONDS,
                    get=True,
                )
        replies = await pipe.execute()
        found: list[bytes | None] = replies[0]
        # The reservation is ours to take back only if this request made it.
        first: bytes | None = replies[2] if len(replies) > 2 else None
        reserved = client_id is not None and signal is not None and first is None
        try:
            principal = await self.authenticator.admit(claims, found[1:])
            acl = await self.acl_from(channel_id, found[0])
            if acl is None or not acl.active:
                raise NotFound("channel not found")
            if not acl.allows(principal):
                raise Forbidden("only the channel's owner and its delegates may send signals")
            if invalid is not None:
                raise invalid
        except ApiError:
            if signal is not None:
                await self._take_back(signal, reserved)
            raise
        assert signal is not None
        sender = sender_of(principal, acl)
        if first is not None:
            _background(self.redis.delete(self.topology.signal_copy_key(signal.signal_id)))
            earlier = signal_decoder.decode(first)
            if earlier.sent_by is None:
                # The reservation is written before the verdict names the sender; the key
                # is this sender's, and the signal was not stored if this publish is not
                # dropped as a duplicate, so this request's sender is the signal's.
                earlier = msgspec.structs.replace(earlier, sent_by=sender)
                first = encode(earlier)
            if earlier.channel_id == channel_id and earlier.valid_until > time.time():
                # The earlier request may have ended without knowing whether JetStream
                # holds its signal (a late PubAck), or may still be waiting: publishing
                # it again under its own id settles that, and is dropped as a duplicate
                # if it is there. Only to the channel this request's checks were for.
                try:
                    await self._publish(earlier, first)
                except (NotStored, NoAnswer) as exc:
                    raise self._unknown(earlier) from exc
                self._after_answer(earlier, watch=False)
            log.info(
                "signal %s accepted again (a retried client_id)",
                earlier.signal_id,
                extra=_ids(earlier),
            )
            return SignalAccepted(
                signal_id=earlier.signal_id,
                channel_id=earlier.channel_id,
                created_at=earlier.created_at,
                valid_until=earlier.valid_until,
                duplicate=True,
            )
        # Who sent it travels in the signal, so every record of it names the same sender.
        signal = msgspec.structs.replace(signal, sent_by=sender)
        payload = encode(signal)
        try:
            await self._publish(signal, payload)
        except NotStored as exc:
            await self._take_back(signal, reserved)  # the retry must be able to send
            raise ServiceUnavailable("the signal could not be queued; nothing was sent") from exc
        except NoAnswer as exc:
            # Not the reservation; the cache entry, so the signal is not shown as sent.
            await self._take_back(signal, False)
            raise self._unknown(signal) from exc
        self._after_answer(signal, watch=True)
        log.info(
            "signal %s accepted",
            signal.signal_id,
            extra=_ids(signal),
        )
        return SignalAccepted(
            signal_id=signal.signal_id,
            channel_id=channel_id,
            created_at=signal.created_at,
            valid_until=signal.valid_until,
        )

    async def _publish(self, signal: Signal, payload: bytes) -> None:
        """Publish under the signal's id until JetStream acknowledges it.

        A timeout does not say the signal was not stored (the disk may have stalled the
        PubAck), so it is sent again with the same Nats-Msg-Id, which JetStream's duplicate
        window turns into a no-op if the first made it. Raises :class:`NotStored` when
        JetStream said nothing was stored, :class:`NoAnswer` when no attempt was answered."""
        subject = self.topology.signal_subject(signal.channel_id)
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                await self.jetstream.publish(
                    subject,
                    payload,
                    headers={"Nats-Msg-Id": signal.signal_id},
                    timeout=PUBLISH_TIMEOUT,
                )
                return
            except NOT_STORED as exc:
                log.error(
                    "publishing signal %s failed: %s", signal.signal_id, exc, extra=_ids(signal)
                )
                raise NotStored from exc
            except Exception as exc:
                log.warning(
                    "signal %s: no PubAck (try %d): %r",
                    signal.signal_id,
                    attempt,
                    exc,
                    extra=_ids(signal),
                )
                if attempt == PUBLISH_ATTEMPTS:
                    raise NoAnswer from exc

    def _after_answer(self, signal: Signal, *, watch: bool) -> None:
        """The signal's record and its live view, started once its answer is on its way.

        Through ``call_soon``: tasks created here would take their first steps before
        the one that writes the answer (the WebSocket's writer, queued after this
        returns); the record's odmantic work and the live view's first Redis read held
        the answer back ~0.4 ms at the median and up to 7 ms on an idle stack. (The live
        view also starts after the socket that sent the signal listens to its channel.)"""

        def start() -> None:
            _background(self._store(signal))
            # The cached copy (written before the verdict) gains the sender, for reads
            # that come before the record.
            _background(
                self.redis.set(
                    self.topology.signal_copy_key(signal.signal_id),
                    encode(signal),
                    xx=True,
                    keepttl=True,
                )
            )
            if watch and self.live is not None:
                self.live.watch(signal.channel_id, signal.signal_id)

        asyncio.get_running_loop().call_soon(start)

    def _unknown(self, signal: Signal) -> ServiceUnavailable:
        """The answer when JetStream may or may not hold the signal. Its client_id
        reservation stays, so a retry with the same client_id gets this signal (published
        again under its id, never a second signal); taking it back would let that retry
        send a new signal id, and every subscriber could trade twice."""
        log.error(
            "signal %s: unknown whether JetStream holds it", signal.signal_id, extra=_ids(signal)
        )
        again = (
            "send it again with the same client_id: that gets this signal, never a second one"
            if signal.client_id is not None
            else "sending it again may send it twice (a client_id makes that safe)"
        )
        return ServiceUnavailable(
            f"no answer from the message store: the signal may or may not be queued; {again}",
            code="outcome_unknown",
            details={"signal_id": signal.signal_id, "client_id": signal.client_id},
        )

    def _signal(
        self,
        sender_id: str,
        channel_id: str,
        asset: str,
        direction: Direction,
        expiry_seconds: int,
        stake: Decimal,
        client_id: str | None,
        expiry_tolerance_seconds: int | None,
    ) -> Signal:
        now = time.time()
        return Signal(
            signal_id=new_id(),
            channel_id=channel_id,
            sender_id=sender_id,
            asset=asset,
            direction=direction,
            expiry_seconds=expiry_seconds,
            stake=stake,
            created_at=now,
            valid_until=now + self.settings.signal_validity_seconds,
            client_id=client_id,
            expiry_tolerance_seconds=expiry_tolerance_seconds,
        )

    async def _take_back(self, signal: Signal, reserved: bool) -> None:
        """Undo the writes of a signal that is not sent (refused, or the publish failed)."""
        keys = [self.topology.signal_copy_key(signal.signal_id)]
        if reserved and signal.client_id is not None:
            keys.append(self.topology.client_id_key(signal.sender_id, signal.client_id))
        try:
            await self.redis.delete(*keys)
        except Exception:
            log.warning(
                "could not take back the Redis writes of signal %s",
                signal.signal_id,
                extra=_ids(signal),
            )

    async def find(self, signal_id: str) -> SignalRecord | None:
        record = await self.db.find_one(SignalRecord, SignalRecord.id == signal_id)
        if record is not None:
            return record
        raw: bytes | None = await self.redis.get(  # type: ignore[assignment]
            self.topology.signal_copy_key(signal_id)
        )
        return None if raw is None else record_of(signal_decoder.decode(raw))

    async def _store(self, signal: Signal) -> None:
        """One try: the ledger writes the record anyway, from the stream."""
        try:
            await self.db.save(record_of(signal))
        except Exception as exc:
            log.warning(
                "signal %s: its record waits for the ledger (%r)",
                signal.signal_id,
                exc,
                extra=_ids(signal),
            )


def sender_of(principal: Principal, acl: ChannelAcl) -> Sender:
    """The audit record of who sends a signal to the channel of ``acl``: its owner, a
    delegate, or an administrator who is neither."""
    if principal.id == acl.owner_id:
        role = SenderRole.OWNER
    elif principal.id in acl.delegates:
        role = SenderRole.DELEGATE
    else:
        role = SenderRole.ADMIN
    return Sender(id=principal.id, display_name=principal.facts.display_name, role=role)


def validate_stake(stake: Decimal) -> Decimal:
    try:
        if not stake.is_finite():
            raise InvalidOperation
        exponent = stake.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -2:
            raise BadRequest(
                "Stake has too many decimals (at most 2), e.g. 10.50",
                code="invalid_stake",
                details={"field": "stake"},
            )
    except InvalidOperation as exc:
        raise BadRequest("Stake must be a number, e.g. 10.00", code="invalid_stake") from exc
    if not MIN_STAKE <= stake <= MAX_STAKE:
        raise BadRequest(
            f"Stake must be between {MIN_STAKE} and {MAX_STAKE}",
            code="invalid_stake",
            details={"field": "stake", "min": str(MIN_STAKE), "max": str(MAX_STAKE)},
        )
    return stake


def validate_asset(asset: str) -> None:
    if not is_canonical_asset(asset):
        raise BadRequest(
            f"unknown asset {asset!r}", code="unknown_asset", details={"field": "asset"}
        )


_tasks: set[asyncio.Task[Any]] = set()


def _background(coro: Any) -> None:
    task = asyncio.create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def _ids(signal: Signal) -> dict[str, str]:
    """The ids a log line about ``signal`` carries (``extra=``), for the JSON format."""
    return {"signal_id": signal.signal_id, "channel_id": signal.channel_id}
