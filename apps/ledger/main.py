"""The ledger service: EXECUTIONS → the books in Redis, then MongoDB; and SIGNALS → the
signals' records (:mod:`apps.ledger.signals`). Executions whose broker refused the
account's credentials mark that account as needing re-linking (:mod:`apps.ledger.relink`)
before their message can be acked.

``python -m apps.ledger.main``; any number of instances share the durable `ledger`.

Each fetched batch goes into the Redis books at once (the counts that live progress and
the API read), then joins a queue that one writer brings into MongoDB in bulk once a
burst of executions is over (a fetch finds the stream empty; ``WRITE_AT_MOST`` at the
latest); messages are acked only once MongoDB holds them, so a crash at any point is
repaired by the redelivery. The queue is bounded: when MongoDB falls far behind, the ledger stops
fetching rather than holding more than ``MAX_QUEUED`` executions in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from functools import partial

import msgspec
from nats.aio.msg import Msg

from apps.core import metrics
from apps.core.db import connect_db
from apps.core.messages import ExecutionBatch, ExecutionEvent, execution_event_decoder
from apps.core.nats import close_nats, connect_from, ensure_topology, fetched
from apps.core.records import SignalRecord
from apps.core.redis import connect_redis_from
from apps.core.service import run_service
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.ledger.book import Book, Pending
from apps.ledger.relink import mark_refused_accounts
from apps.ledger.signals import keep_signal_records
from apps.ledger.track import TrackKeeper

log = logging.getLogger("ledger")
FETCH_BATCH = 2000
# A fetch that finds nothing for this long is what ends a burst (see MongoWriter).
FETCH_WAIT = 0.5
MAX_QUEUED = 20_000  # executions recorded in Redis and waiting for MongoDB
# AckWait of the `ledger` consumer is 30 s: queued messages say they are still being
# worked on well before that.
PROGRESS_INTERVAL = 10.0
# MongoDB is written once a fetch finds no executions (a fan-out's burst is over),
# WRITE_AT_MOST seconds after the first of them was queued, or when WRITE_AT executions
# wait, whichever comes first: while a fan-out runs, its CPU and the disk go to placing
# orders, and fewer, larger bulk writes cost MongoDB less than many small ones.
WRITE_AT_MOST = 5.0
WRITE_AT = MAX_QUEUED // 2
# How often the ledger looks for track records that time has aged (TRACK_MAX_AGE).
TRACK_CHECK_INTERVAL = 60.0


class MongoWriter:
    """Brings recorded batches into MongoDB, oldest first, and acks their messages."""

    def __init__(
        self,
        book: Book,
        *,
        at_most: float = WRITE_AT_MOST,
        write_at: int = WRITE_AT,
    ) -> None:
        self.book = book
        self.at_most = at_most
        self.write_at = write_at
        self._queue: list[tuple[Pending, list[Msg], int]] = []
        self._queued = 0
        self._changed = asyncio.Condition()
        self._closing = False
        self._drained = False  # a fetch found nothing since the last put
        self._first_put = 0.0  # loop time of the queue's oldest entry
        self._first_put_at = 0.0  # the same, time.monotonic(), for copier_ledger_lag_seconds
        self._writing: list[Msg] = []  # the messages of the batch being written
        # time.monotonic() when the oldest execution MongoDB lacks was queued; 0: none.
        self._oldest = 0.0

    async def put(self, pending: Pending, msgs: list[Msg], executions: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._queued < MAX_QUEUED)
            now = asyncio.get_running_loop().time()
            if not self._queue:
                self._first_put = now
                self._first_put_at = time.monotonic()
                if not self._oldest:
                    self._oldest = self._first_put_at
            self._queue.append((pending, msgs, executions))
            self._queued += executions
            self._drained = False
            self._changed.notify_all()

    async def drained(self) -> None:
        """The stream had nothing more: the burst is over.

        Told by the reader, whose fetch the server held for ``FETCH_WAIT`` without a
        message, not measured here as a pause between puts: a ledger kept off the CPU by
        the fan-out (it runs niced) sees long pauses between its own puts while the
        executions keep coming, and would write MongoDB in the middle of the burst.
        """
        async with self._changed:
            self._drained = True
            self._changed.notify_all()

    async def close(self) -> None:
        """Finish what is queued, then stop :meth:`run`."""
        async with self._changed:
            self._closing = True
            self._changed.notify_all()

    async def run(self) -> None:
        """Write until :meth:`close` is called and the queue is empty."""
        keepalive = asyncio.create_task(self._keep_in_progress())
        try:
            while True:
                async with self._changed:
                    await self._changed.wait_for(lambda: bool(self._queue) or self._closing)
                    if not self._queue:
                        return
                    await self._coalesce()
                    batch, self._queue = self._queue, []
                merged = Pending()
                for pending, _, _ in batch:
                    merged.merge(pending)
                msgs = self._writing = [m for _, ms, _ in batch for m in ms]
                try:
                    await self.book.persist(merged)
                except Exception:
                    log.exception("MongoDB did not take %d writes; redelivering", len(merged))
                    await asyncio.gather(*(m.nak(delay=1) for m in msgs), return_exceptions=True)
                else:
                    await asyncio.gather(*(m.ack() for m in msgs), return_exceptions=True)
                    # What MongoDB lacks now was queued after the batch just written.
                    self._oldest = self._first_put_at if self._queue else 0.0
                finally:
                    self._writing = []
                async with self._changed:
                    self._queued -= sum(n for _, _, n in batch)
                    self._changed.notify_all()
        finally:
            keepalive.cancel()

    def lag(self) -> float:
        """Seconds since the oldest execution MongoDB does not have yet was queued (0: none);
        read by copier_ledger_lag_seconds at scrape time, from the server's thread."""
        oldest = self._oldest
        return max(0.0, time.monotonic() - oldest) if oldest else 0.0

    async def _coalesce(self) -> None:
        """Hold the queue (the condition's lock held) until it should be written."""
        loop = asyncio.get_running_loop()
        while not self._closing and not self._drained and self._queued < self.write_at:
            remaining = self._first_put + self.at_most - loop.time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()

    async def _keep_in_progress(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            # Those being written too: a large batch's MongoDB write can outlast AckWait,
            # and JetStream would deliver the batch being written again.
            waiting = [*self._writing, *(m for _, msgs, _ in self._queue for m in msgs)]
            await asyncio.gather(*(m.in_progress() for m in waiting), return_exceptions=True)


async def keep_tracks_fresh(track: TrackKeeper, stop: asyncio.Event) -> None:
    """Until ``stop``: recompute the channels' track records that time has aged (a
    window loses its oldest signals without any execution arriving)."""
    while not stop.is_set():
        try:
            await track.refresh_stale()
        except Exception:
            log.exception("could not refresh the channels' track records; trying again later")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), TRACK_CHECK_INTERVAL)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    topology = Topology(settings.namespace)
    nc = await connect_from(settings, "copier-ledger")
    await ensure_topology(nc, topology, replicas=settings.nats_replicas)
    mongo, engine = connect_db(settings.mongodb_uri, settings.mongodb_database)
    redis = connect_redis_from(settings)
    database = mongo[settings.mongodb_database]
    book = Book(redis, database, topology)
    try:
        await book.track.ensure_indexes()
    except Exception:
        # Reads are slower without it, never wrong; it is created on the next start.
        log.warning("could not create the signal results' index", exc_info=True)
    writer = MongoWriter(book, at_most=WRITE_AT_MOST, write_at=WRITE_AT)  # as set at start
    writing = asyncio.create_task(writer.run())
    if settings.metrics_enabled:
        metrics.ledger_lag_seconds.set_function(writer.lag)
    js = nc.jetstream()
    signals = engine.get_collection(SignalRecord)
    recording = asyncio.create_task(keep_signal_records(js, topology, signals, stop, book.track))
    refreshing = asyncio.create_task(keep_tracks_fresh(book.track, stop))
    sub = await js.pull_subscribe_bind("ledger", topology.stream("EXECUTIONS"))
    watching = metrics.watch_jetstream_soon(
        settings.metrics_enabled,
        js,
        [(topology.stream("EXECUTIONS"), "ledger"), (topology.stream("SIGNALS"), "ledger")],
    )
    try:
        while not stop.is_set():
            if recording.done():
                recording.result()  # its error ends the ledger, to be restarted
            # Nothing on a timeout, an outage or a consumer between leaders.
            msgs = await fetched(partial(sub.fetch, FETCH_BATCH, timeout=FETCH_WAIT), FETCH_WAIT)
            if not msgs:
                await writer.drained()
                continue
            events: list[ExecutionEvent] = []
            readable: list[Msg] = []
            for msg in msgs:
                try:
                    events.append(execution_event_decoder.decode(msg.data))
                    readable.append(msg)
                except (msgspec.ValidationError, msgspec.DecodeError):
                    # A message we cannot read will never become readable: terminate it
                    # (it stays in the stream for inspection) instead of redelivering.
                    log.error("undecodable execution on %s: %r", msg.subject, msg.data[:200])
                    await msg.term()
            try:
                pending = await book.record(events)
                await mark_refused_accounts(
                    database,
                    redis,
                    topology,
                    (e for b in events if isinstance(b, ExecutionBatch) for e in b.executions),
                )
            except Exception:
                log.exception(
                    "could not record %d executions; they will be redelivered", len(events)
                )
                for msg in readable:
                    await msg.nak(delay=1)
                continue
            count = sum(len(e.executions) for e in events if isinstance(e, ExecutionBatch))
            await writer.put(pending, readable, count)
    finally:
        await metrics.stop_watching(watching)
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        await writer.close()
        await writing  # what Redis holds reaches MongoDB before the ledger stops
        if not recording.done():
            stop.set()  # the executions loop may have ended on an error of its own
        with contextlib.suppress(Exception):
            await recording
        refreshing.cancel()
        with contextlib.suppress(BaseException):
            await refreshing
        await close_nats(nc)
        await redis.aclose()
        mongo.close()


def main() -> None:
    run_service("ledger", run)


if __name__ == "__main__":
    main()
