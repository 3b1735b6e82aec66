"""The router: SIGNALS → per-subscriber orders on ORDERS, refusals on EXECUTIONS.

``python -m apps.router.main``; every instance shares the durable `router` consumer.
A signal is acked only after every order and refusal is acknowledged by JetStream, so a
router that dies mid-fan-out is harmless: the signal is redelivered and the repeated
publishes are dropped by the streams' duplicate windows (same Nats-Msg-Id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal, InvalidOperation
from functools import partial

import msgspec
import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext
from redis.asyncio import Redis

from apps.core import metrics
from apps.core.exposure import loss_limit_reason, needs_balance, peak_field
from apps.core.logging import set_log_ids
from apps.core.messages import (
    Execution,
    ExecutionBatch,
    ExecutionState,
    FanoutStarted,
    Signal,
    encode,
    signal_decoder,
)
from apps.core.nats import close_nats, connect_from, ensure_topology, fetch_ready, fetched
from apps.core.outage import backoff
from apps.core.redis import connect_redis_from
from apps.core.routing import RoutingRecord, unpack_record
from apps.core.service import run_service
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.router.counters import DailyCounters, Verdict
from apps.router.fanout import Plan, group_orders, plan_fanout, refusal, shard_of
from apps.router.risk import Balance, needs_counters

log = logging.getLogger("router")

SHARD_HEADER = "Copier-Shard"  # "k/n": fan out only shard k of n
PUBLISH_WINDOW = 512  # JetStream publishes in flight at once
ROUTE_SLICE = 2000  # subscriptions routed (and their orders published) at a time
FLUSH_NUDGE_SECONDS = 1
REFUSALS_PER_MESSAGE = 500
# How long after it began one read of a channel serves the shards of its signal that this
# router takes (they are published together and taken within milliseconds).
SHARED_READ_SECONDS = 10.0
# in_progress to JetStream while a signal is worked on: a few beats per AckWait (2 s), so
# a late one on a loaded machine does not hand a live router's signal to another.
IN_PROGRESS_EVERY = 0.5


class Router:
    def __init__(self, settings: Settings, nc: NATS, redis: Redis) -> None:
        self.settings = settings
        self.topology = Topology(settings.namespace)
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.redis = redis
        self.counters = DailyCounters(redis, self.topology)
        self._reads: dict[str, _SharedRead] = {}

    async def handle(self, msg: Msg) -> None:
        try:
            signal = signal_decoder.decode(msg.data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            log.error("undecodable signal on %s: %r", msg.subject, msg.data[:200])
            await msg.term()
            return
        set_log_ids(signal_id=signal.signal_id, channel_id=signal.channel_id)  # this task's
        shard, shards = _shard_of(msg)
        async with _keep_alive(msg):
            if shards == 1:
                size = await self.redis.hlen(self.topology.routing_key(signal.channel_id))
                if size > self.settings.router_shard_size:
                    await self._split(signal, -(-size // self.settings.router_shard_size))
                    await msg.ack_sync()
                    return
            # A redelivered signal may have been partly routed already: its orders must be
            # published again (the stream drops the repeats) so that the workers, who
            # know what was placed, decide each order's state — never the router.
            redelivered = msg.metadata.num_delivered > 1
            await self.fan_out(signal, shard, shards, redelivered=redelivered)
        await msg.ack_sync()

    async def _split(self, signal: Signal, shards: int) -> None:
        """Re-publish the signal once per shard; free routers take the shards in parallel."""
        subject = self.topology.signal_subject(signal.channel_id)
        payload = encode(signal)
        await self._publish_all(
            [
                (
                    subject,
                    payload,
                    {"Nats-Msg-Id": f"{signal.signal_id}.shard.{k}", SHARD_HEADER: f"{k}/{shards}"},
                )
                for k in range(shards)
            ]
        )
        log.info("signal %s split into %d shards", signal.signal_id, shards)

    async def fan_out(
        self, signal: Signal, shard: int, shards: int, *, redelivered: bool = False
    ) -> None:
        """Route one shard of a signal, publishing as it goes: the orders of the first
        ``ROUTE_SLICE`` subscriptions are on their way to the workers while the rest are
        still being sized, so placing starts a few ms after the signal instead of after
        the whole channel was routed. Returns once JetStream acknowledged every publish."""
        started = time.perf_counter()
        raw, fields = await self._shard_fields(signal, shard, shards)
        now = time.time()
        execution_subject = self.topology.execution_subject(signal.channel_id, signal.signal_id)
        fanout = FanoutStarted(
            signal_id=signal.signal_id,
            channel_id=signal.channel_id,
            shard=shard,
            shards=shards,
            total=len(fields),
            signal_created_at=signal.created_at,
            at=now,
        )
        publisher = _Publisher(self.js)
        publisher.send(
            execution_subject,
            encode(fanout),
            {"Nats-Msg-Id": f"fanout.{signal.signal_id}.{shard}"},
        )
        try:
            orders, refused = await self._route(
                signal,
                shard,
                raw,
                fields,
                now,
                publisher,
                execution_subject,
                redelivered=redelivered,
            )
        except BaseException:
            publisher.abandon()  # the redelivered signal publishes them again
            raise
        await publisher.done()
        if self.settings.metrics_enabled:
            metrics.stage_seconds.labels("accept_to_routed").observe(
                time.time() - signal.created_at
            )
        log.info(
            "signal %s shard %d/%d: %d orders, %d refused in %.1f ms",
            signal.signal_id,
            shard,
            shards,
            orders,
            refused,
            (time.perf_counter() - started) * 1000,
        )

    async def _shard_fields(
        self, signal: Signal, shard: int, shards: int
    ) -> tuple[dict[bytes, bytes], list[bytes]]:
        """The channel's routing records and the fields of this shard, in subscription
        order (so a redelivery cuts the same slices and groups, and JetStream drops the
        repeated publishes by their message ids). Records are decoded later, slice by
        slice: the first orders need not wait for the last record.

        The shards of one signal that this router takes share one read of the channel
        (:class:`_SharedRead`): a large channel's ``HGETALL`` blocks Valkey and costs this
        process CPU, so it is read once per signal, not once per shard."""
        key = self.topology.routing_key(signal.channel_id)
        if shards == 1:
            raw: dict[bytes, bytes] = await self.redis.hgetall(key)  # type: ignore[assignment]
            return raw, sorted(raw)
        read = self._reads.get(signal.signal_id)
        if read is None or read.failed:
            read = self._reads[signal.signal_id] = _SharedRead(self.redis, key)
            asyncio.get_running_loop().call_later(
                SHARED_READ_SECONDS, self._forget_read, signal.signal_id, read
            )
        return await read.shard(shard, shards)

    def _forget_read(self, signal_id: str, read: _SharedRead) -> None:
        if self._reads.get(signal_id) is read:
            del self._reads[signal_id]

    async def _route(
        self,
        signal: Signal,
        shard: int,
        raw: dict[bytes, bytes],
        fields: Sequence[bytes],
        now: float,
        publisher: _Publisher,
        execution_subject: str,
        *,
        redelivered: bool,
    ) -> tuple[int, int]:
        """Orders and refusals of the routing records ``raw[f] for f in fields``, slice by
        slice, handed to ``publisher`` (refusals go to ``execution_subject``)."""
        orders = refused = 0
        for part, start in enumerate(range(0, len(fields), ROUTE_SLICE)):
            records = [unpack_record(raw[field]) for field in fields[start : start + ROUTE_SLICE]]
            balances = await self._balances(records)
            plan = await self._plan(signal, records, balances, now, redelivered=redelivered)
            orders += len(plan.orders)
            refused += len(plan.refusals)
            for first in range(0, len(plan.refusals), REFUSALS_PER_MESSAGE):
                chunk = plan.refusals[first : first + REFUSALS_PER_MESSAGE]
                publisher.send(
                    execution_subject,
                    encode(_batch(signal, chunk)),
                    {"Nats-Msg-Id": f"refused.{signal.signal_id}.{shard}.{part}.{first}"},
                )
            for msg_id, batch in group_orders(
                signal.signal_id, plan.orders, self.settings.order_group_size, shard, part
            ):
                subject = self.topology.order_subject(batch.broker_kind, shard)
                publisher.send(subject, encode(batch), {"Nats-Msg-Id": msg_id})
            await asyncio.sleep(0)  # let this slice's publishes reach the client's buffer
            if part == 0:
                # ... and make the first ones leave now, not after the shard is planned: a
                # nudge only (the fan-out waits for their PubAcks), so a flush that a
                # reconnect leaves unanswered is not waited for.
                with contextlib.suppress(nats.errors.Error):
                    await self.nc.flush(timeout=FLUSH_NUDGE_SECONDS)
        return orders, refused

    async def _plan(
        self,
        signal: Signal,
        records: Sequence[RoutingRecord],
        balances: dict[str, Balance],
        now: float,
        *,
        redelivered: bool,
    ) -> Plan:
        """Risk rules for some of the signal's subscriptions: the stateless ones, then the
        daily counters (one script call) for those that have limits, which reserves each
        order's stake against its subscription's daily loss limit."""
        plan = plan_fanout(
            signal,
            records,
            balances,
            now,
            expiry_tolerance_seconds=self.settings.expiry_tolerance_seconds,
            expire_stale=not redelivered,
        )
        by_id = {r.subscription_id: r for r in records}
        limited = [o for o in plan.orders if needs_counters(by_id[o.subscription_id])]
        if not limited:
            return plan
        checked = await self.counters.check_and_take(
            signal.signal_id, [(o, by_id[o.subscription_id]) for o in limited], now
        )
        refused_ids = set()
        for order, check in zip(limited, checked, strict=True):
            record = by_id[order.subscription_id]
            match check.verdict:
                case Verdict.OK:
                    continue
                case Verdict.TRADES_PER_DAY:
                    reason = f"max trades per day reached ({record.max_trades_per_day})"
                case Verdict.DAILY_LOSS:
                    assert record.daily_loss_limit is not None  # the script checks only those
                    reason = loss_limit_reason(check.used_minor, record.daily_loss_limit)
            refused_ids.add(order.subscription_id)
            plan.refusals.append(refusal(signal, record, ExecutionState.REJECTED, reason, now))
        plan.orders = [o for o in plan.orders if o.subscription_id not in refused_ids]
        return plan

    async def _balances(self, records: Sequence[RoutingRecord]) -> dict[str, Balance]:
        """Broker balances and their peaks for the subscriptions whose rules read them
        (percent stakes, balance floors, drawdown limits), in one round trip."""
        ids = sorted({r.broker_account_id for r in records if needs_balance(r)})
        if not ids:
            return {}
        fields = [f for account_id in ids for f in (account_id, peak_field(account_id))]
        values: list[bytes | None] = await self.redis.hmget(  # type: ignore[assignment]
            self.topology.balances_key(), fields
        )
        balances: dict[str, Balance] = {}
        for k, account_id in enumerate(ids):
            amount, peak = _decimal(values[2 * k]), _decimal(values[2 * k + 1])
            if amount is not None:
                balances[account_id] = Balance(amount, peak)
        return balances

    async def _publish_all(self, publishes: Sequence[tuple[str, bytes, dict[str, str]]]) -> None:
        """Publish with many acks in flight; raise if any publish was not stored."""
        publisher = _Publisher(self.js)
        for subject, data, headers in publishes:
            publisher.send(subject, data, headers)
        await publisher.done()


class _SharedRead:
    """One read of a channel's routing hash, split into a signal's shards once."""

    def __init__(self, redis: Redis, key: str) -> None:
        self.failed = False
        self._parts: dict[int, list[list[bytes]]] = {}
        # A task of its own: a shard whose handler is cancelled does not cancel the read.
        self._raw = asyncio.ensure_future(self._read(redis, key))

    async def _read(self, redis: Redis, key: str) -> dict[bytes, bytes]:
        try:
            raw: dict[bytes, bytes] = await redis.hgetall(key)  # type: ignore[assignment]
        except BaseException:
            self.failed = True  # the next shard (or the redelivery) reads again
            raise
        return raw

    async def shard(self, shard: int, shards: int) -> tuple[dict[bytes, bytes], list[bytes]]:
        raw = await asyncio.shield(self._raw)
        parts = self._parts.get(shards)
        if parts is None:
            parts = self._parts[shards] = [[] for _ in range(shards)]
            for field in sorted(raw):
                parts[shard_of(field.decode(), shards)].append(field)
        return raw, parts[shard]


class _Publisher:
    """JetStream publishes sent as they come, ``PUBLISH_WINDOW`` awaiting their acks at
    once; :meth:`done` returns when all are stored and raises if one was not."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js
        self._window = asyncio.Semaphore(PUBLISH_WINDOW)
        self._sent: list[asyncio.Task[object]] = []

    def send(self, subject: str, data: bytes, headers: dict[str, str]) -> None:
        self._sent.append(asyncio.create_task(self._publish(subject, data, headers)))

    async def _publish(self, subject: str, data: bytes, headers: dict[str, str]) -> object:
        async with self._window:
            return await self.js.publish(subject, data, headers=headers)

    def abandon(self) -> None:
        for task in self._sent:
            task.cancel()

    async def done(self) -> None:
        results = await asyncio.gather(*self._sent, return_exceptions=True)
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is not None:
            raise failed


def retry_delay(delivered: int | None) -> float:
    """How long a signal that failed (Valkey or JetStream away) waits before its next
    delivery. Deliveries are unlimited: the signal is held, never dropped."""
    return backoff((delivered or 1) - 1)


def _decimal(value: bytes | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value.decode())
    except InvalidOperation:
        return None


def _batch(signal: Signal, executions: list[Execution]) -> ExecutionBatch:
    return ExecutionBatch(
        signal_id=signal.signal_id, channel_id=signal.channel_id, executions=executions
    )


def _shard_of(msg: Msg) -> tuple[int, int]:
    value = (msg.headers or {}).get(SHARD_HEADER)
    if not value:
        return 0, 1
    k, n = value.split("/", 1)
    return int(k), int(n)


@contextlib.asynccontextmanager
async def _keep_alive(msg: Msg, every: float = IN_PROGRESS_EVERY):  # type: ignore[no-untyped-def]
    """Tell JetStream we are still working on ``msg``: the router's AckWait (2 s) is short
    so that a dead router's signal is redelivered while it can still be traded."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            await msg.in_progress()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def consume(
    settings: Settings,
    stop: asyncio.Event,
    on_ready: Callable[[], Awaitable[None]] | None = None,
) -> None:
    topology = Topology(settings.namespace)
    nc = await connect_from(settings, "copier-router")
    await ensure_topology(nc, topology, replicas=settings.nats_replicas)
    redis = connect_redis_from(settings)
    router = Router(settings, nc, redis)
    sub = await nc.jetstream().pull_subscribe_bind("router", topology.stream("SIGNALS"))
    slots = asyncio.Semaphore(settings.router_concurrency)
    tasks: set[asyncio.Task[None]] = set()

    async def guarded(msg: Msg) -> None:
        try:
            await router.handle(msg)
        except Exception:
            log.exception("fan-out failed; the signal will be redelivered")
            with contextlib.suppress(Exception):
                await msg.nak(delay=retry_delay(msg.metadata.num_delivered))
        finally:
            slots.release()

    if on_ready:
        await on_ready()
    watching = metrics.watch_jetstream_soon(
        settings.metrics_enabled, nc.jetstream(), [(topology.stream("SIGNALS"), "router")]
    )
    try:
        while not stop.is_set():
            free = settings.router_concurrency - len(tasks)
            if free <= 0:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                continue
            msgs = await fetched(partial(fetch_ready, sub, free, timeout=0.5), pause=0.5)
            for msg in msgs:
                await slots.acquire()
                task = asyncio.create_task(guarded(msg))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:  # drain: finish the signals in hand before exiting
            await asyncio.wait(tasks)
    finally:
        await metrics.stop_watching(watching)
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        await close_nats(nc)
        await redis.aclose()


def main() -> None:
    run_service("router", consume)


if __name__ == "__main__":
    main()
