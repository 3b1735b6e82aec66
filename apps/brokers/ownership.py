"""Who owns an in-flight order, and when another worker may take it over.

An in-flight marker names its owner: the worker's id and the incarnation (one per
process start) that claimed it. Each worker process holds a short **process lease** in
Valkey, ``key("worker", worker_id)`` = its incarnation, renewed every third of
``ttl``. A marker's owner is alive while that key still holds the marker's incarnation:

- a worker restarted under the same id writes its new incarnation at start, so the
  orders its previous life left in flight are taken over at once;
- a worker that died without a successor loses its key ``ttl`` after its last renewal,
  and a surviving peer takes its orders over then — not a whole marker lease later.

The owner's side of the bargain: a process that cannot renew its lease stops every
broker call it has running before the lease can lapse (:meth:`ProcessLease.run` calls
``on_lapse``) and starts no new one until it holds the lease again, so nobody reconciles
an order whose buy may still be on its way. A process that finds its id held by a newer
one exits at once: the newer one is taking its orders over. Whoever takes an order over
asks the broker what was booked before anything is placed (the runner's ``_take_over``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from enum import Enum
from typing import Any, cast

from redis.asyncio import Redis
from redis.typing import EncodableT

from apps.brokers.base import Found, NotFound, Placed, ReconcileResult, Uncertain, Undecidable
from apps.brokers.markers import Marker
from apps.core.ids import new_id
from apps.core.outage import DEPENDENCY_ERRORS
from apps.core.redis import confirmed
from apps.core.topology import Topology

log = logging.getLogger("brokers.ownership")

# A worker that finds its id held by a newer process exits with this code.
SUPERSEDED_EXIT_CODE = 3


class Verdict(Enum):
    REPORT = "report"  # final: re-report what the marker says, never call the broker
    WAIT = "wait"  # its owner is alive and may be at the broker right now
    TAKE_OVER = "take over"  # its owner is gone: reconcile with the broker, then finish


def decide(marker: Marker, now: float, *, owner_alive: bool | None, stale_grace: float) -> Verdict:
    """What a worker that finds ``marker`` on an order it was delivered may do.

    ``owner_alive`` is what the owner's process lease says (``None`` for a marker that
    names no incarnation: only its own lease can tell). A marker lease that lapsed (plus
    ``stale_grace`` for clock skew) means the owner stopped working on it even if its
    process lives on (Valkey unreachable for a whole lease, a paused process)."""
    if marker.is_final:
        return Verdict.REPORT
    if owner_alive is False:
        return Verdict.TAKE_OVER
    if now < marker.lease_until + stale_grace:
        return Verdict.WAIT
    return Verdict.TAKE_OVER


class Unbooked(Enum):
    PLACE = "place"  # the broker holds no contract and the order is still ours: place it
    LEAVE = "leave"  # the broker holds none, but another worker took the order: never place


def after_reconciliation(
    result: ReconcileResult, *, order_id: str, still_ours: bool
) -> Placed | Uncertain | Unbooked:
    """What an order in doubt becomes once the broker was asked what it booked.

    A booked contract is the order's placement; "not booked" lets only the worker that
    still holds the order place it (placing cannot duplicate a contract the broker does
    not have); an answer the broker cannot give ends the order ``unknown``, never in a
    second buy."""
    match result:
        case Found(placed=placed):
            return placed
        case NotFound() if still_ours:
            return Unbooked.PLACE
        case NotFound():
            return Unbooked.LEAVE
        case Undecidable(reason=reason):
            return Uncertain(order_id=order_id, message=reason)


# Renew only our own lease, or take it back if it lapsed while Valkey was away; 0 when
# another process holds this worker id now (we are a stale incarnation).
_RENEW = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class ProcessLease:
    def __init__(
        self,
        redis: Redis,
        topology: Topology,
        worker_id: str,
        *,
        ttl: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        replicas: int = 0,
    ) -> None:
        self.redis = redis
        self.topology = topology
        self.worker_id = worker_id
        self.incarnation = new_id()
        self.ttl = ttl
        self.clock = clock
        # Replicas that must confirm a write of the lease before it counts as held: a
        # lease a failover could lose would let a peer take our orders over meanwhile.
        self.replicas = replicas
        self._held_until = 0.0
        self._held = asyncio.Event()
        self._renew = redis.register_script(_RENEW)
        # Another process wrote this worker id: ours is over for good.
        self.superseded = False
        self._alive_cache: dict[tuple[str, str], tuple[float, asyncio.Future[bool]]] = {}

    def key(self, worker_id: str) -> str:
        return self.topology.worker_process_key(worker_id)

    async def take(self) -> None:
        """Claim the worker id for this incarnation (a previous life's orders are ours to
        take over from now on)."""
        sent = self.clock()
        key, ttl_ms = self.key(self.worker_id), int(self.ttl * 1000)
        await confirmed(self.redis, self.replicas, "SET", key, self.incarnation, "PX", ttl_ms)
        self._mark_held(sent)

    def holds(self, margin: float) -> bool:
        """Whether the lease runs at least ``margin`` seconds more."""
        return not self.superseded and self.clock() + margin < self._held_until

    async def wait_held(self, margin: float, timeout: float) -> bool:
        deadline = self.clock() + timeout
        while not self.holds(margin):
            left = deadline - self.clock()
            if left <= 0 or self.superseded:
                return False
            self._held.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._held.wait(), min(left, 0.25))
        return True

    async def run(self, on_lapse: Callable[[], None]) -> None:
        """Renew every third of ``ttl``; call ``on_lapse`` once the lease is within a third
        of ``ttl`` of lapsing unrenewed, or is another process's now."""
        while True:
            await asyncio.sleep(self.ttl / 3)
            sent = self.clock()
            try:
                ours = await self._write_renewal()
            except DEPENDENCY_ERRORS as exc:
                if self._held_until - self.clock() <= self.ttl / 3:
                    log.warning("process lease of %s not renewed (%r)", self.worker_id, exc)
                    on_lapse()
                continue
            if ours == 1:
                self._mark_held(sent)
                continue
            # A newer process holds this worker id (a restart while this one was paused,
            # or two processes given one WORKER_ID): it is taking this one's orders over,
            # so this one must not write another word about them. It leaves at once, its
            # messages unacked.
            log.critical(
                "worker id %s was taken by another process; this one exits", self.worker_id
            )
            self.superseded = True
            self._held_until = 0.0
            on_lapse()
            logging.shutdown()
            os._exit(SUPERSEDED_EXIT_CODE)

    async def _write_renewal(self) -> Any:
        keys = [self.key(self.worker_id)]
        args: list[EncodableT] = [self.incarnation, int(self.ttl * 1000)]
        if not self.replicas:
            return await self._renew(keys=keys, args=args)
        return await confirmed(self.redis, self.replicas, "EVAL", _RENEW, 1, *keys, *args)

    def _mark_held(self, sent: float) -> None:
        self._held_until = sent + self.ttl
        self._held.set()

    async def owner_alive(self, marker: Marker) -> bool | None:
        """Whether the process that claimed ``marker`` still holds its lease (``None``
        when the marker names no incarnation). The orders of one owner found together (a
        takeover of a whole fan-out) share one read per 0.2 s."""
        if not marker.incarnation:
            return None
        if marker.worker == self.worker_id and marker.incarnation == self.incarnation:
            return not self.superseded
        owner = (marker.worker, marker.incarnation)
        now = self.clock()
        cached = self._alive_cache.get(owner)
        if cached is None or now - cached[0] >= 0.2 or cached[1].cancelled():
            if len(self._alive_cache) > 64:
                self._alive_cache = {k: v for k, v in self._alive_cache.items() if now - v[0] < 0.2}
            cached = (now, asyncio.ensure_future(self._read_alive(*owner)))
            self._alive_cache[owner] = cached
        try:
            return await asyncio.shield(cached[1])
        except BaseException:
            if self._alive_cache.get(owner) is cached:
                del self._alive_cache[owner]  # the next caller reads again
            raise

    async def _read_alive(self, worker_id: str, incarnation: str) -> bool:
        current = cast(bytes | None, await self.redis.get(self.key(worker_id)))
        return current is not None and current.decode() == incarnation
