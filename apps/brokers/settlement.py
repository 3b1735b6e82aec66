"""Following placed contracts until they settle, and publishing how they ended.

Every placed order has an entry in its worker's hash ``key("settle", kind, worker_id)``
(written together with its ``placed`` marker), and every worker that ever had one is in
the set ``key("settle-owners", kind)``. Each worker keeps a heartbeat key alive while it
runs and removes it when it stops cleanly; the hash of an owner without a heartbeat
(stopped, or crashed and its key expired) is moved whole into a running worker's hash
and followed there, at start-up and then every ``scan_interval``. An entry is removed only
after its settled execution is stored by JetStream, so a stop at any moment leaves the
contract for someone else and nothing is lost (at worst a settlement is published twice;
the ledger keeps the first).

The adapter follows the contracts (``watch_settlement``: for Deriv one stream per
account); this module only keeps the books and batches what settled into executions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import cast

import msgspec
from redis.asyncio import Redis

from apps.brokers.base import (
    BrokerAccount,
    BrokerAdapter,
    Settlement,
    SettlementResult,
    SettlementWatch,
)
from apps.brokers.credentials import CredentialStore, CredentialsUnreadable
from apps.brokers.markers import PendingSettlement, unpack_pending
from apps.brokers.reporting import ExecutionPublisher, settled_execution
from apps.core import metrics
from apps.core.messages import Execution
from apps.core.topology import Topology

log = logging.getLogger("brokers.settlement")

# KEYS: the dead owner's hash, ours, its heartbeat, the owners set. ARGV: its worker id.
# Moves every entry of an owner that has no heartbeat (checked in the same step, so an
# owner that is alive keeps its entries) and returns them.
_ADOPT = """
if redis.call('EXISTS', KEYS[3]) == 1 then return {} end
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  redis.call('HSET', KEYS[2], entries[i], entries[i + 1])
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[4], ARGV[1])
return entries
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
    ) -> None:
        self.redis = redis
        self.topology = topology
        self.adapter = adapter
        self.credentials = credentials
        self.publisher = publisher
        self.worker_id = worker_id
        self.kind = adapter.kind
        self.key = topology.settlements_key(adapter.kind, worker_id)
        self.owners_key = topology.settlement_owners_key(adapter.kind)
        self.heartbeat_ttl = heartbeat_ttl
        self.scan_interval = scan_interval
        self.flush_interval = flush_interval
        self._adopt = redis.register_script(_ADOPT)
        self._watching: dict[str, SettlementWatch] = {}
        # Followed here or settled and waiting to be published: never followed twice.
        self._ours: set[str] = set()
        self._settled: asyncio.Queue[tuple[str, Execution]] = asyncio.Queue()
        self._background: list[asyncio.Task[None]] = []

    def alive_key(self, worker_id: str) -> str:
        return self.topology.settlement_alive_key(self.kind, worker_id)

    @property
    def following(self) -> int:
        return len(self._watching)

    async def start(self) -> None:
        await self._beat()
        await self.redis.sadd(self.owners_key, self.worker_id)
        # Entries already in our own hash: a previous run under this worker id.
        own = cast(dict[bytes, bytes], await self.redis.hgetall(self.key))
        await self._follow_entries(own)
        await self.adopt_orphans()
        self._background = [
            asyncio.create_task(self._keep_alive(), name="settlement-heartbeat"),
            asyncio.create_task(self._publish_settled(), name="settlement-publisher"),
        ]

    async def stop(self) -> None:
        """Stop following, publish what already settled, and hand the rest over."""
        watching = len(self._watching)
        for watch in self._watching.values():
            watch.cancel()
        self._watching.clear()
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
        log.info("settlement followers stopped; %d contracts left pending", watching)

    def follow(self, order_id: str, entry: PendingSettlement, account: BrokerAccount) -> None:
        """Follow a contract this worker just placed (its entry is already in Redis)."""
        if order_id in self._ours:
            return
        self._ours.add(order_id)

        def on_settled(result: SettlementResult) -> None:
            self._watching.pop(order_id, None)
            if isinstance(result, Settlement):
                settled = settled_execution(entry.placed, result)
                metrics.stage_seconds.labels("placed_to_settled").observe(
                    max(0.0, settled.at - entry.placed.at)
                )
                self._settled.put_nowait((order_id, settled))
            else:
                # The broker will not tell (e.g. the token was revoked): retrying would
                # only spend the account's rate limit. The order stays "placed".
                log.error(
                    "settlement of %s unavailable: %s",
                    order_id,
                    result.message,
                    extra={"order_id": order_id},
                )
                task = asyncio.create_task(self._forget(order_id))
                task.add_done_callback(_log_failure)

        self._watching[order_id] = self.adapter.watch_settlement(
            account, entry.contract_id, entry.due, on_settled
        )

    async def adopt_orphans(self) -> int:
        """Take over the entries of every owner that is no longer alive."""
        owners = cast(set[bytes], await self.redis.smembers(self.owners_key))
        adopted = 0
        for raw in owners:
            owner = raw.decode()
            if owner == self.worker_id:
                continue
            flat = cast(
                list[bytes],
                await self._adopt(
                    keys=[
                        self.topology.settlements_key(self.kind, owner),
                        self.key,
                        self.alive_key(owner),
                        self.owners_key,
                    ],
                    args=[owner],
                ),
            )
            if flat:
                entries = dict(zip(flat[::2], flat[1::2], strict=True))
                log.info("adopted %d settlements from %s", len(entries), owner)
                adopted += await self._follow_entries(entries)
        return adopted

    async def _follow_entries(self, entries: dict[bytes, bytes]) -> int:
        pending: dict[str, PendingSettlement] = {}
        for field, packed in entries.items():
            order_id = field.decode()
            if order_id in self._ours:
                continue
            try:
                pending[order_id] = unpack_pending(order_id, packed)
            except msgspec.DecodeError:
                log.error("unreadable pending settlement %s dropped", order_id)
                await self.redis.hdel(self.key, order_id)
        accounts = await self.credentials.accounts_for({p.account_id for p in pending.values()})
        followed = 0
        for order_id, entry in pending.items():
            account = accounts.get(entry.account_id)
            if isinstance(account, BrokerAccount):
                self.follow(order_id, entry, account)
                followed += 1
                continue
            ids = {"order_id": order_id, "broker_account_id": entry.account_id}
            if isinstance(account, CredentialsUnreadable):
                log.error("cannot follow %s: %s", order_id, account, extra=ids)
            else:
                log.error("cannot follow %s: broker account not found", order_id, extra=ids)
            await self._forget(order_id)
        return followed

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


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("forgetting a settlement failed", exc_info=task.exception())
