"""The broker worker loop, shared by every broker kind: ORDERS in, the broker in the
middle, EXECUTIONS out — each order placed at most once and never silently dropped.

Orders of one signal fetched together are worked as one group, in chunks that each
take ``len(chunk)`` concurrency slots:

1. **Claim** the chunk's orders with ``SET NX`` of an in-flight marker (one round trip),
   only once slots are free — an order merely waiting in memory has no marker, so a
   crash leaves it to the redelivery. Orders whose marker already exists: a final one is
   re-reported as it was; an in-flight one whose owner is alive is waited for (maybe
   slow — a late redelivery, nats-server #6937); one whose owning process is gone (its
   process lease, :mod:`apps.brokers.ownership`: at once after a restart under the same
   worker id) or whose lease lapsed is taken over by compare-and-set and reconciled with
   the broker before anything is retried (:func:`apps.brokers.ownership.decide`).
2. **Place** the claimed orders: stale ones (``valid_until`` passed) end ``expired``
   without a broker call, unknown accounts ``failed``; the rest go to the adapter in one
   ``place_many`` (Deriv buys for many accounts in one request) and transient failures
   are retried with back-off until ``valid_until``. The :class:`LeaseKeeper` renews the
   markers' leases meanwhile and cancels the call if it cannot, as does the process
   lease, so no other worker ever acts on an order whose buy may still be on its way; a
   call stopped that way is reconciled with the broker once the lease is held again.
3. **Finish** each marker with its final state and the execution to re-report (a placed
   order's pending settlement in the same atomic step), publish one ExecutionBatch per
   signal, wait for JetStream's PubAck, and only then ack the ORDERS messages. While
   other chunks are still waiting for or at the broker, this waits for them (at most
   ``finish_defer``, and only while the answered orders' leases hold), and the orders
   answered meanwhile are finished together: a fan-out's last placements come first, its
   bookkeeping after.

A Valkey or NATS outage holds the orders where they are (claims, credentials, finishing,
publishing all wait with back-off, the messages kept in progress): it delays them, never
drops them, and no redelivery count ends them (``max_deliver`` is unlimited).

Placed contracts are followed in the background until they settle
(:mod:`apps.brokers.settlement`). On SIGTERM the loop stops fetching, finishes and acks
what it holds, and leaves unfinished settlements to the next worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from functools import partial

import msgspec
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext
from redis.asyncio import Redis

from apps.brokers.base import (
    BrokerAccount,
    BrokerAdapter,
    Expired,
    OrderRequest,
    PlaceOutcome,
    ReconcileResult,
    Rejected,
    TransientFailure,
    Undecidable,
    place_until_valid,
)
from apps.brokers.bursts import Bursts
from apps.brokers.credentials import CredentialStore, CredentialsUnreadable
from apps.brokers.leases import LeaseKeeper, Owned, Slots
from apps.brokers.markers import (
    AccountClaims,
    Marker,
    MarkerBook,
    MarkerStatus,
    PendingSettlement,
    unpack_marker,
)
from apps.brokers.orders import (
    abandoned,
    broker_chunks,
    contract_end,
    request_for,
    usable_account,
)
from apps.brokers.ownership import ProcessLease, Unbooked, Verdict, after_reconciliation, decide
from apps.brokers.reporting import ExecutionPublisher, execution_for_outcome, execution_of
from apps.brokers.runner_config import RunnerConfig
from apps.brokers.settlement import SettlementFollowers
from apps.brokers.worker_meter import WorkerMeter
from apps.core import metrics
from apps.core.logging import set_log_ids
from apps.core.messages import Execution, ExecutionState, Order, OrderBatch, order_batch_decoder
from apps.core.nats import fetch_ready, fetched
from apps.core.outage import backoff, hold
from apps.core.topology import Topology

log = logging.getLogger("brokers.runner")

# Answered orders finished per lock hold (the finish script takes 64 per call): a large
# round still gives lease renewals and the event loop a turn every few milliseconds.
_FINISH_SLICE = 1024
# How often a round waiting for the burst to end looks at its due time again (a chunk
# answered meanwhile may bring it closer: its lease is the older one).
_ROUND_RECHECK = 0.25


class Runner:
    def __init__(
        self,
        js: JetStreamContext,
        redis: Redis,
        topology: Topology,
        adapter: BrokerAdapter,
        credentials: CredentialStore,
        config: RunnerConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.js = js
        self.topology = topology
        self.adapter = adapter
        self.kind = adapter.kind
        self.credentials = credentials
        self.config = config
        self.clock = clock
        self.publisher = ExecutionPublisher(js, topology)
        self.markers = MarkerBook(
            redis,
            topology,
            topology.settlements_key(self.kind, config.worker_id),
            replicas=config.wait_replicas,
        )
        self.settlements = SettlementFollowers(
            redis,
            topology,
            adapter,
            credentials,
            self.publisher,
            worker_id=config.worker_id,
            heartbeat_ttl=config.heartbeat_ttl,
            scan_interval=config.settle_scan_interval,
        )
        self.slots = Slots(config.concurrency)
        self.leases = LeaseKeeper(self.markers, config.lease_seconds, clock)
        self.owners = ProcessLease(
            redis,
            topology,
            config.worker_id,
            ttl=config.process_lease_seconds,
            replicas=config.wait_replicas,
        )
        self._working: set[asyncio.Task[None]] = set()
        self._messages = 0
        self._room = asyncio.Event()
        # Chunks waiting for slots or at the broker (no settling time: a round of
        # bookkeeping may start the moment the last of them is answered).
        self._placements = Bursts(settle=0.0)
        # Answered orders waiting to be finished together (_finish_soon).
        self._round: list[tuple[Owned, Execution]] = []
        self._round_done: asyncio.Future[None] | None = None
        self._round_due = 0.0  # when the round must begin finishing (self.clock())
        self._rounds: set[asyncio.Task[None]] = set()
        self._last_claim = 0.0
        self.meter = WorkerMeter(self.kind, enabled=config.metrics_enabled)

    # the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work orders until ``stop`` is set, then finish what was fetched and return."""
        # Bind, never create: the consumer's config comes from nats/ (ensure_topology).
        sub = await self.js.pull_subscribe_bind(
            f"broker-{self.kind}", self.topology.stream("ORDERS")
        )
        # From here on, what a previous life of this worker id left in flight is taken
        # over at once by whoever is delivered it.
        await hold("taking the process lease", self.owners.take, log)
        await self.settlements.start()
        keeper = asyncio.create_task(self.leases.run(), name="lease-keeper")
        owner = asyncio.create_task(self.owners.run(self.leases.cancel_calls), name="lease")
        watching = metrics.watch_jetstream_soon(
            self.config.metrics_enabled,
            self.js,
            [(self.topology.stream("ORDERS"), f"broker-{self.kind}")],
        )
        log.info(
            "worker %s consuming broker-%s (concurrency %d, %d pending settlements adopted)",
            self.config.worker_id,
            self.kind,
            self.config.concurrency,
            self.settlements.following,
        )
        try:
            await self._consume(sub, stop)
        finally:
            if self._working:
                log.info("draining %d fetched messages", self._messages)
                await asyncio.gather(*self._working, return_exceptions=True)
            keeper.cancel()
            owner.cancel()
            await asyncio.gather(keeper, owner, return_exceptions=True)
            await metrics.stop_watching(watching)
            await self.settlements.stop()
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _consume(self, sub: JetStreamContext.PullSubscription, stop: asyncio.Event) -> None:
        while not stop.is_set():
            room = self.config.max_messages - self._messages
            if room <= 0:
                self._room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), self.config.fetch_timeout)
                continue
            batch, wait = min(self.config.fetch_batch, room), self.config.fetch_timeout
            try:
                # Nothing on a timeout, an outage or a consumer between leaders.
                msgs = await fetched(partial(fetch_ready, sub, batch, timeout=wait), pause=wait)
            except Exception:
                log.exception("fetching orders failed")
                await asyncio.sleep(wait)
                continue
            if not msgs:
                continue
            self._messages += len(msgs)
            task = asyncio.create_task(self._work(msgs))
            self._working.add(task)
            task.add_done_callback(self._working.discard)

    async def _work(self, msgs: list[Msg]) -> None:
        try:
            by_signal: defaultdict[str, list[tuple[Msg, OrderBatch]]] = defaultdict(list)
            for msg in msgs:
                try:
                    batch = order_batch_decoder.decode(msg.data)
                except (msgspec.ValidationError, msgspec.DecodeError):
                    # It will never become readable: terminate (it stays in the stream for
                    # inspection) rather than redeliver it MaxDeliver times.
                    log.error("undecodable order batch on %s: %r", msg.subject, msg.data[:200])
                    await msg.term()
                    continue
                delivered = msg.metadata.num_delivered
                if delivered is not None and delivered > 1:
                    log.warning(
                        "redelivery %d of %d orders of signal %s",
                        delivered,
                        len(batch.orders),
                        batch.signal_id,
                    )
                by_signal[batch.signal_id].append((msg, batch))
                self.meter.routed(batch.signal_id, msg)
            await asyncio.gather(*(self._work_signal(sid, i) for sid, i in by_signal.items()))
        finally:
            self._messages -= len(msgs)
            self._room.set()

    async def _work_signal(self, signal_id: str, items: list[tuple[Msg, OrderBatch]]) -> None:
        """Every order of one signal fetched together: placed as one group, reported in one
        batch, and the messages acked once JetStream holds the executions."""
        set_log_ids(signal_id=signal_id)  # a task of its own (gather): the ids end with it
        msgs = [msg for msg, _ in items]
        orders: dict[str, Order] = {}
        for _, batch in items:
            for order in batch.orders:
                orders.setdefault(order.order_id, order)  # a repeat is one order
        # In progress for as long as they are held: waiting for a slot, at the broker, or
        # waiting out a Valkey or NATS outage (every step below holds through one).
        keepalive = asyncio.create_task(self._keep_in_progress(msgs))
        try:
            executions = await self.execute(list(orders.values()))
            await hold(
                f"publishing the executions of signal {signal_id}",
                lambda: self.publisher.publish(executions),
                log,
            )
        except Exception:
            # A defect, not an outage: the markers already say what was done, so the
            # redelivery re-reports finished orders and takes over unfinished ones.
            log.exception("orders of signal %s not finished; they will be redelivered", signal_id)
            delivered = max(m.metadata.num_delivered or 1 for m in msgs)
            await asyncio.gather(
                *(m.nak(delay=backoff(delivered - 1)) for m in msgs), return_exceptions=True
            )
            return
        finally:
            keepalive.cancel()
        await asyncio.gather(*(m.ack() for m in msgs), return_exceptions=True)
        states = Counter(e.state.value for e in executions)
        log.info(
            "signal %s: %d orders reported (%s)",
            signal_id,
            len(executions),
            ", ".join(f"{n} {state}" for state, n in sorted(states.items())),
        )

    async def _keep_in_progress(self, msgs: Sequence[Msg]) -> None:
        while True:
            await asyncio.sleep(self.config.progress_interval)
            await asyncio.gather(*(m.in_progress() for m in msgs), return_exceptions=True)

    # one group of orders ----------------------------------------------------------------

    async def execute(self, orders: Sequence[Order]) -> list[Execution]:
        """Bring each order to a final state (or re-report it) and say what it is."""
        size = max(1, min(self.config.place_chunk, self.config.concurrency))
        results = await asyncio.gather(
            *(self._execute_chunk(c) for c in broker_chunks(orders, size))
        )
        return [execution for chunk in results for execution in chunk]

    async def _execute_chunk(self, orders: Sequence[Order]) -> list[Execution]:
        with self._placements.placing():
            # Claimed only once slots are free, right before the broker call: an order this
            # worker merely holds in memory carries no marker, so if the worker dies it is
            # redelivered and placed by another one instead of waiting out a lease.
            async with self.slots.hold(len(orders)):
                # One in-flight marker serves the whole chunk: it names the worker, not
                # the order.
                marker = self._inflight(self.clock())
                wanted = [(o, marker) for o in orders]
                claims = await hold("claiming orders", lambda: self.markers.claim(wanted), log)
                owned = [Owned(c.order, c.mine, marker) for c in claims if c.mine is not None]
                answered = await self._place_at_broker(owned)
        # The slots are free again and the markers still in flight: finishing them waits
        # for the rest of the burst, so a fan-out's last placements do not share the CPU
        # and Redis with the bookkeeping of its first ones. A crash meanwhile is the crash
        # after a buy that markers already cover: the order is taken over and reconciled
        # with the broker, never bought again.
        if answered:
            await self._finish_soon(answered)
        others = [(c.order, c.existing) for c in claims if c.existing is not None]
        resolved = await asyncio.gather(*(self._resolve(order, seen) for order, seen in others))
        placed = [execution for _, execution in answered]
        return placed + [execution for group in resolved for execution in group]

    async def _finish_soon(self, answered: list[tuple[Owned, Execution]]) -> None:
        """Finish ``answered`` together with every chunk answered meanwhile, once no chunk
        is waiting for or at the broker, at most ``finish_defer`` after the first of them,
        and a third of a lease before the earliest of their leases lapses.

        Answered orders' leases are not renewed (renewing every answered marker of a large
        fan-out would hold the keeper's lock for as long as the renewals take), so the
        round is due while each of them still holds, with a third of a lease left for the
        finish itself: at least a third of a lease after the first answer, since a held
        lease always has two thirds left. Finishing a round's orders together takes the
        lock and calls the scripts once per _FINISH_SLICE orders instead of once per
        chunk, so the bookkeeping keeps pace with any rate of placements.
        See docs/burst-bookkeeping.md.
        """
        self.leases.drop([item for item, _ in answered])
        due = min(item.marker.lease_until for item, _ in answered) - self.config.lease_seconds / 3
        if self._round_done is None:
            self._round_done = asyncio.get_running_loop().create_future()
            self._round_due = min(self.clock() + self.config.finish_defer, due)
            task = asyncio.create_task(self._finish_round(self._round_done))
            self._rounds.add(task)
            task.add_done_callback(self._rounds.discard)
        else:
            self._round_due = min(self._round_due, due)
        self._round.extend(answered)
        await asyncio.shield(self._round_done)

    async def _finish_round(self, done: asyncio.Future[None]) -> None:
        try:
            # The due time only moves closer as chunks join, so look again now and then.
            quiet = False
            while not quiet and (left := self._round_due - self.clock()) > 0:
                quiet = await self._placements.quiet(min(left, _ROUND_RECHECK))
            items, self._round, self._round_done = self._round, [], None
            log.debug(
                "finishing %d answered orders (%s)",
                len(items),
                "burst over" if quiet else "due: their leases are not renewed",
            )
            for start in range(0, len(items), _FINISH_SLICE):
                await self._finish(items[start : start + _FINISH_SLICE])
        except asyncio.CancelledError:
            # Its orders stay in flight: unacked, they are redelivered and, once the
            # leases lapse, taken over and reconciled.
            if self._round_done is done:
                self._round, self._round_done = [], None
            done.cancel()
            raise
        except Exception as exc:
            done.set_exception(exc)
        else:
            done.set_result(None)

    def _inflight(self, now: float, *, takeovers: int = 0) -> Marker:
        # Every claim of this process gets its own instant, so a marker equal to one it
        # wrote is that claim and no other (MarkerBook.claim takes a resent claim back).
        now = self._last_claim = max(now, self._last_claim + 1e-6)
        return Marker(
            status=MarkerStatus.INFLIGHT,
            worker=self.config.worker_id,
            claimed_at=now,
            updated_at=now,
            lease_until=now + self.config.lease_seconds,
            takeovers=takeovers,
            incarnation=self.owners.incarnation,
        )

    async def _place(self, owned: Sequence[Owned]) -> list[Execution]:
        """Place orders whose markers we hold and finish them (the caller holds their
        slots)."""
        answered = await self._place_at_broker(owned)
        await self._finish(answered)
        return [execution for _, execution in answered]

    async def _place_at_broker(self, owned: Sequence[Owned]) -> list[tuple[Owned, Execution]]:
        """Each order's final state, from the broker or from what stopped it before; the
        markers stay in flight until :meth:`_finish` (renewed by the lease keeper while
        the call runs)."""
        if not owned:
            return []
        self.leases.hold(owned)
        finals: dict[str, Execution] = {}
        try:
            ready = await self._prepare(owned, finals)
        except BaseException:
            # Nothing reached the broker: give the claims back so a redelivery need not
            # wait for their leases to lapse.
            self.leases.drop(owned)
            await asyncio.gather(
                *(self.markers.release(o.order.order_id, o.token) for o in owned),
                return_exceptions=True,
            )
            raise
        if ready:
            outcomes = await self._call_broker(ready)
            for (item, _), outcome in zip(ready, outcomes, strict=True):
                finals[item.order.order_id] = self._report(item.order, outcome)
        return [(item, finals[item.order.order_id]) for item in owned]

    async def _prepare(
        self, owned: Sequence[Owned], finals: dict[str, Execution]
    ) -> list[tuple[Owned, OrderRequest]]:
        """Settle what needs no broker (stale, no credentials); requests for the rest."""
        now = self.clock()
        live = []
        for item in owned:
            if now >= item.order.valid_until:
                finals[item.order.order_id] = self._execution(
                    item.order, ExecutionState.EXPIRED, reason="signal expired before placement"
                )
            else:
                live.append(item)
        accounts = await hold(
            "reading broker credentials",
            lambda: self.credentials.accounts_for([i.order.broker_account_id for i in live]),
            log,
        )
        ready = []
        for item in live:
            account = usable_account(item.order, accounts.get(item.order.broker_account_id))
            if isinstance(account, str):
                finals[item.order.order_id] = self._execution(
                    item.order, ExecutionState.FAILED, reason=account
                )
            else:
                item.account = account
                ready.append((item, request_for(item.order, account)))
        return ready

    async def _account(self, order: Order) -> BrokerAccount | str:
        """The order's broker account, or why there is none."""
        try:
            account = await hold(
                "reading broker credentials",
                lambda: self.credentials.account_for(order.broker_account_id),
                log,
            )
        except CredentialsUnreadable as exc:
            return usable_account(order, exc)
        return usable_account(order, account)

    async def _call_broker(
        self, ready: Sequence[tuple[Owned, OrderRequest]]
    ) -> list[PlaceOutcome | BaseException]:
        """One place_many for the group, then retries of transient failures, as one task
        the lease keeper can cancel, bounded by ``call_timeout`` past ``valid_until``; a
        call the lease keeper stopped is settled with the broker (_after_abandoned), one
        that ran out of time ends ``unknown``."""
        requests = [request for _, request in ready]
        valid_for = min(r.valid_until for r in requests) - self.clock()
        # No buy starts unless the process lease will outlast the first answer: while it
        # is not held, another worker may already be reconciling these orders.
        if not await self.owners.wait_held(self.config.process_lease_seconds / 3, valid_for):
            return [
                Expired(order_id=r.order_id, last_message="worker lost its process lease")
                for r in requests
            ]
        now = self.clock()
        hard_stop = max(now, min(r.valid_until for r in requests)) + self.config.call_timeout
        call = asyncio.create_task(self._place_with_retries(requests))
        for item, _ in ready:
            item.call = call
        timed_out = False
        try:
            async with asyncio.timeout(hard_stop - now):
                return await asyncio.shield(call)
        except TimeoutError:
            timed_out = True
            call.cancel()
        except asyncio.CancelledError:
            # Our own task is being cancelled (not the call): stop the call as well.
            if not call.cancelled():
                call.cancel()
                raise
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await call
        if timed_out:
            # A broker that has not answered in all that time may still book the buy
            # later: what the broker lists now cannot decide it.
            return [abandoned(r) for r in requests]
        return await self._after_abandoned(ready)

    async def _after_abandoned(
        self, ready: Sequence[tuple[Owned, OrderRequest]]
    ) -> list[PlaceOutcome | BaseException]:
        """Orders whose broker call was stopped before it answered (their lease was
        lapsing) may have been booked. Once this worker
        holds its lease again the broker is asked: a booked order is placed, one the
        broker does not have is placed now if its signal is still valid, and only what
        the broker cannot tell ends ``unknown``."""
        margin = self.config.process_lease_seconds / 3
        if not await self.owners.wait_held(margin, self.config.lease_seconds):
            return [abandoned(r) for _, r in ready]
        # A compare-and-set renewal first: an order another worker took over meanwhile is
        # marked lost (never placed by us), and one still ours cannot be taken from now.
        await hold("renewing leases", self.leases.renew, log)
        found = await asyncio.gather(
            *(
                self._reconcile(item.order, request, claimed_at=item.marker.claimed_at)
                for item, request in ready
            )
        )
        outcomes: dict[str, PlaceOutcome | BaseException] = {}
        again: list[tuple[Owned, OrderRequest]] = []
        for (item, request), result in zip(ready, found, strict=True):
            match after_reconciliation(result, order_id=request.order_id, still_ours=not item.lost):
                case Unbooked.PLACE:
                    again.append((item, request))
                case Unbooked.LEAVE:
                    outcomes[request.order_id] = abandoned(request)
                case outcome:
                    outcomes[request.order_id] = outcome
        if again:
            retried = await self._call_broker(again)
            outcomes.update(zip((r.order_id for _, r in again), retried, strict=True))
        return [outcomes[request.order_id] for _, request in ready]

    async def _place_with_retries(
        self, requests: Sequence[OrderRequest]
    ) -> list[PlaceOutcome | BaseException]:
        started = time.perf_counter()
        try:
            if len(requests) > 1:
                first = await self.adapter.place_many(requests)
            else:
                first = [await self.adapter.place(requests[0])]
        except Exception as exc:
            log.exception("%s adapter failed placing %d orders", self.kind, len(requests))
            return [exc] * len(requests)
        self.meter.broker_call("buy_batch" if len(requests) > 1 else "buy", started, first)
        if len(first) != len(requests):
            error = RuntimeError(f"place_many answered {len(first)} of {len(requests)}")
            log.error("%s", error)
            return [error] * len(requests)
        outcomes: list[PlaceOutcome | BaseException] = list(first)
        transient = [i for i, o in enumerate(first) if isinstance(o, TransientFailure)]
        if transient:
            retried = await asyncio.gather(*(self._retry(requests[i], first[i]) for i in transient))
            for i, outcome in zip(transient, retried, strict=True):
                outcomes[i] = outcome
        return outcomes

    async def _retry(
        self, request: OrderRequest, outcome: PlaceOutcome
    ) -> PlaceOutcome | BaseException:
        """Transient failures are tried again (with the adapter's back-off) while valid."""
        if not isinstance(outcome, TransientFailure):
            return outcome
        pause = min(max(outcome.retry_after, 0.0), self.config.max_retry_pause)
        if self.clock() + pause >= request.valid_until:
            return Expired(
                order_id=request.order_id, last_code=outcome.code, last_message=outcome.message
            )
        try:
            await asyncio.sleep(pause)
            return await place_until_valid(
                self.adapter, request, clock=self.clock, max_pause=self.config.max_retry_pause
            )
        except Exception as exc:
            log.exception(
                "%s adapter failed placing %s",
                self.kind,
                request.order_id,
                extra={"order_id": request.order_id},
            )
            return exc

    def _report(self, order: Order, outcome: PlaceOutcome | BaseException) -> Execution:
        if isinstance(outcome, BaseException):
            return self._execution(
                order, ExecutionState.FAILED, reason=f"internal error: {type(outcome).__name__}"
            )
        if isinstance(outcome, Rejected):
            self.meter.rejected(outcome)
            if outcome.account_refused:
                self.credentials.forget(order.broker_account_id)
        return execution_for_outcome(order, outcome, self.clock(), self.kind)

    def _execution(self, order: Order, state: ExecutionState, *, reason: str) -> Execution:
        return execution_of(order, state, self.clock(), self.kind, reason=reason)

    async def _finish(self, items: Sequence[tuple[Owned, Execution]]) -> None:
        now = self.clock()
        writes = []
        for item, execution in items:
            marker = Marker(
                status=MarkerStatus(execution.state.value),
                worker=self.config.worker_id,
                claimed_at=item.marker.claimed_at,
                updated_at=now,
                takeovers=item.marker.takeovers,
                execution=execution,
            )
            pending = None
            if execution.state is ExecutionState.PLACED and execution.contract_id:
                pending = PendingSettlement(
                    contract_id=execution.contract_id,
                    owner=self.config.worker_id,
                    placed=execution,
                    broker_account_id=item.order.broker_account_id,
                    expires_at=contract_end(item.order, execution.at),
                )
            writes.append((item, marker, pending))
        async with self.leases.lock:
            self.leases.drop([item for item, _, _ in writes])
            # A renewal not known to be kept is settled first: the finish expects the
            # marker the store holds.
            await hold(
                "renewing leases",
                lambda: self.leases.confirm_renewals([item for item, _, _ in writes]),
                log,
            )
            done = await hold(
                f"finishing {len(writes)} orders",
                lambda: self.markers.finish_many(
                    [(i.order.order_id, i.token, m, p) for i, m, p in writes]
                ),
                log,
            )
        self.meter.finished([e for (_, e), ok in zip(items, done, strict=True) if ok])
        for (item, marker, pending), ok in zip(writes, done, strict=True):
            if not ok:
                # Only if our lease lapsed while we worked (Redis unreachable for a whole
                # lease, or a paused process): say so loudly, report what we saw.
                log.error(
                    "marker of %s changed while %s held it; reporting %s as this worker saw it",
                    item.order.order_id,
                    self.config.worker_id,
                    marker.status,
                    extra=_ids_of(item.order),
                )
            elif pending is not None and item.account is not None:
                self.settlements.follow(item.order.order_id, pending, item.account)

    # orders someone claimed before ------------------------------------------------------

    async def _resolve(self, order: Order, seen: bytes) -> list[Execution]:
        """An order whose marker existed: re-report it, wait for its owner, or take over."""
        while True:
            try:
                marker = unpack_marker(seen, order)
            except msgspec.DecodeError:
                # Written by something else (a newer version?): never guess, never rebuy.
                log.error(
                    "unreadable placement marker for %s", order.order_id, extra=_ids_of(order)
                )
                return [
                    self._execution(
                        order, ExecutionState.UNKNOWN, reason="unreadable placement marker"
                    )
                ]
            alive = (
                None
                if marker.is_final
                else await hold(
                    "reading a process lease", partial(self.owners.owner_alive, marker), log
                )
            )
            match decide(
                marker, self.clock(), owner_alive=alive, stale_grace=self.config.stale_grace
            ):
                case Verdict.REPORT if marker.execution is not None:
                    return [marker.execution]  # re-report, never call the broker
                case Verdict.REPORT:
                    return [
                        self._execution(
                            order, ExecutionState(marker.status.value), reason="re-reported"
                        )
                    ]
                case Verdict.WAIT:
                    # Its owner is alive and may be at the broker right now (a late
                    # redelivery while the first attempt is slow): wait for its word.
                    await asyncio.sleep(self.config.poll_interval)
                case Verdict.TAKE_OVER:
                    taken = await self._take_over(order, seen, marker)
                    if taken is not None:
                        return taken
            current = await hold("reading a marker", lambda: self.markers.get(order.order_id), log)
            if current is None:  # the owner gave its claim back without a broker call
                return await self._execute_chunk([order])
            seen = current

    async def _take_over(
        self, order: Order, stale: bytes, marker: Marker
    ) -> list[Execution] | None:
        """Reconcile an order whose owner is gone; ``None`` if another worker took it first."""
        async with self.slots.hold(1):
            fresh = self._inflight(self.clock(), takeovers=marker.takeovers + 1)
            token = await hold(
                "taking over an order",
                lambda: self.markers.compare_and_set(order.order_id, stale, fresh),
                log,
            )
            if token is None:
                return None
            log.warning(
                "order %s: in-flight marker of %s is not its owner's any more; reconciling"
                " with the broker",
                order.order_id,
                marker.worker,
                extra=_ids_of(order),
            )
            item = Owned(order, token, fresh)
            self.leases.hold([item])
            account = await self._account(order)
            if isinstance(account, str):
                # A buy may have happened and cannot be looked for: unknown, never a rebuy.
                execution = self._execution(
                    order, ExecutionState.UNKNOWN, reason=f"{account}; cannot reconcile"
                )
            else:
                item.account = account
                found = await self._reconcile(
                    order, request_for(order, account), claimed_at=marker.claimed_at
                )
                match after_reconciliation(
                    found, order_id=order.order_id, still_ours=not item.lost
                ):
                    case Unbooked.PLACE:
                        # _place expires it instead if the signal is no longer valid.
                        return await self._place([item])
                    case Unbooked.LEAVE:
                        return None
                    case outcome:
                        execution = execution_for_outcome(order, outcome, self.clock(), self.kind)
            await self._finish([(item, execution)])
            return [execution]

    async def _reconcile(
        self, order: Order, request: OrderRequest, *, claimed_at: float
    ) -> ReconcileResult:
        """What the broker booked for ``order``, asked no sooner than ``booking_bound``
        after the claim that may have sent its buy (a buy on its way is not listed yet,
        and "not found" would let it be bought again). Each attempt is bounded by
        ``call_timeout``; one that met Valkey or NATS away is made again once they are
        back (an outage is no reason to call an order undecidable)."""
        claims = AccountClaims(self.markers, order)
        await asyncio.sleep(max(0.0, claimed_at + self.config.booking_bound - self.clock()))

        async def attempt() -> ReconcileResult:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self.config.call_timeout):
                    return await self.adapter.reconcile(request, claims)
            except TimeoutError:
                return Undecidable(reason="reconciliation did not finish in time")
            finally:
                self.meter.broker_call("reconcile", started)

        try:
            return await hold(f"reconciling {order.order_id}", attempt, log)
        except Exception as exc:
            log.exception(
                "%s adapter failed reconciling %s",
                self.kind,
                request.order_id,
                extra=_ids_of(order),
            )
            return Undecidable(reason=f"reconciliation failed: {type(exc).__name__}")


def _ids_of(order: Order) -> dict[str, str]:
    """The ids a log line about one order carries (``extra=``), for the JSON format."""
    return {"order_id": order.order_id, "broker_account_id": order.broker_account_id}
