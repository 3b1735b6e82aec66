"""Following placed contracts until they settle, and publishing how they ended.

Every placed order has an entry in the hash ``key("settle", kind)`` (written together
with its ``placed`` marker), naming the worker that follows it. Each worker keeps a
heartbeat key alive while it runs and removes it when it stops cleanly; entries whose
owner has no heartbeat (stopped, or crashed and its key expired) are adopted by any
running worker, at start-up and then every ``scan_interval``. An entry is removed only
after its settled execution is stored by JetStream, so a stop at any moment leaves the
contract for someone else and nothing is lost (at worst a settlement is published twice;
the ledger keeps the first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import cast

import msgspec
from redis.asyncio import Redis

from apps.brokers.base import BrokerAdapter, Settlement
from apps.brokers.credentials import CredentialStore
from apps.brokers.markers import PendingSettlement, pack, unpack_pending
from apps.brokers.reporting import ExecutionPublisher, settled_execution
from apps.core.messages import Execution
from apps.core.topology import Topology

log = logging.getLogger("brokers.settlement")

# KEYS: settlements hash. ARGV: field, expected, new — adopt an entry nobody changed since.
_ADOPT = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


class SettlementFollowers:
    def __init__(
        self,
        redis: Redis,
        topology: Topology,
        adapter: BrokerAdapter,
        credentials: CredentialStore,
        publisher: ExecutionPublisher,
        *,
        worker_id: str,
        heartbeat_ttl: float = 30.0,
        scan_interval: float = 10.0,
        flush_interval: float = 0.2,
        retry_pause: float = 5.0,
    ) -> None:
        self.redis = redis
        self.topology = topology
        self.adapter = adapter
        self.credentials = credentials
        self.publisher = publisher
        self.worker_id = worker_id
        self.key = topology.key("settle", adapter.kind)
        self.heartbeat_ttl = heartbeat_ttl
        self.scan_interval = scan_interval
        self.flush_interval = flush_interval
        self.retry_pause = retry_pause
        self._adopt = redis.register_script(_ADOPT)
        self._following: dict[str, asyncio.Task[None]] = {}
        # Followed here or settled and waiting to be published: never adopted again.
        self._ours: set[str] = set()
        self._settled: asyncio.Queue[tuple[str, Execution]] = asyncio.Queue()
        self._background: list[asyncio.Task[None]] = []

    def alive_key(self, worker_id: str) -> str:
        return self.topology.key("worker", self.adapter.kind, worker_id)

    @property
    def following(self) -> int:
        return len(self._following)

    async def start(self) -> None:
        await self._beat()
        await self.adopt_orphans()
        self._background = [
            asyncio.create_task(self._keep_alive(), name="settlement-heartbeat"),
            asyncio.create_task(self._publish_settled(), name="settlement-publisher"),
        ]

    async def stop(self) -> None:
        """Stop following, publish what already settled, and hand the rest over."""
        followers = list(self._following.values())
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        done = _drain(self._settled)
        if done:
            try:
                await self._report(done)
            except Exception:
                log.exception("%d settlements stay pending for another worker", len(done))
        # Without our heartbeat, the next worker to start (or scan) adopts what is left.
        await self.redis.delete(self.alive_key(self.worker_id))
        log.info("settlement followers stopped; %d contracts left pending", len(followers))

    def follow(self, order_id: str, entry: PendingSettlement) -> None:
        if order_id in self._ours:
            return
        self._ours.add(order_id)
        task = asyncio.create_task(self._follow(order_id, entry), name=f"settle-{order_id}")
        self._following[order_id] = task
        task.add_done_callback(lambda _: self._following.pop(order_id, None))

    async def adopt_orphans(self) -> int:
        """Follow entries whose owner is this worker or no longer alive."""
        adopted = 0
        entries = cast(dict[bytes, bytes], await self.redis.hgetall(self.key))
        alive: dict[str, bool] = {self.worker_id: False}  # our own entries are ours to follow
        for field, packed in entries.items():
            order_id = field.decode()
            if order_id in self._ours:
                continue
            try:
                entry = unpack_pending(packed)
            except msgspec.DecodeError:
                log.error("unreadable pending settlement %s dropped", order_id)
                await self.redis.hdel(self.key, order_id)
                continue
            if entry.owner not in alive:
                alive[entry.owner] = bool(await self.redis.exists(self.alive_key(entry.owner)))
            if alive[entry.owner]:
                continue
            mine = msgspec.structs.replace(entry, owner=self.worker_id)
            if await self._adopt(keys=[self.key], args=[order_id, packed, pack(mine)]) == 1:
                if entry.owner != self.worker_id:
                    log.info("adopted settlement of %s from %s", order_id, entry.owner)
                self.follow(order_id, mine)
                adopted += 1
        return adopted

    async def _beat(self) -> None:
        await self.redis.set(
            self.alive_key(self.worker_id), self.worker_id, ex=max(1, round(self.heartbeat_ttl))
        )

    async def _keep_alive(self) -> None:
        since_scan = 0.0
        pause = self.heartbeat_ttl / 3
        while True:
            await asyncio.sleep(pause)
            try:
                await self._beat()
                since_scan += pause
                if since_scan >= self.scan_interval:
                    since_scan = 0.0
                    await self.adopt_orphans()
            except Exception:
                log.exception("settlement heartbeat failed; retrying")

    async def _follow(self, order_id: str, entry: PendingSettlement) -> None:
        while True:
            try:
                account = await self.credentials.account_for(entry.order.broker_account_id)
                if account is None:
                    log.error("cannot follow %s: broker account not found", order_id)
                    await self._forget(order_id)
                    return
                result = await self.adapter.follow_settlement(account, entry.contract_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("following contract %s of %s failed", entry.contract_id, order_id)
                await asyncio.sleep(self.retry_pause)
                continue
            if isinstance(result, Settlement):
                await self._settled.put((order_id, settled_execution(entry.placed, result)))
            else:
                # The broker will not tell (e.g. the token was revoked): retrying would
                # only spend the account's rate limit. The order stays "placed".
                log.error("settlement of %s unavailable: %s", order_id, result.message)
                await self._forget(order_id)
            return

    async def _publish_settled(self) -> None:
        while True:
            first = await self._settled.get()
            # Contracts of one signal settle together: gather them into one batch.
            await asyncio.sleep(self.flush_interval)
            done = [first, *_drain(self._settled)]
            try:
                await self._report(done)
            except Exception:
                log.exception("publishing %d settlements failed; retrying", len(done))
                for item in done:
                    self._settled.put_nowait(item)
                await asyncio.sleep(1.0)

    async def _report(self, done: list[tuple[str, Execution]]) -> None:
        await self.publisher.publish([execution for _, execution in done])
        await self._forget(*(order_id for order_id, _ in done))

    async def _forget(self, *order_ids: str) -> None:
        await self.redis.hdel(self.key, *order_ids)
        self._ours.difference_update(order_ids)


def _drain(queue: asyncio.Queue[tuple[str, Execution]]) -> list[tuple[str, Execution]]:
    items = []
    with contextlib.suppress(asyncio.QueueEmpty):
        while True:
            items.append(queue.get_nowait())
    return items
