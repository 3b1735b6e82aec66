"""SIGNALS → MongoDB: every signal the stream holds gets its record.

The API writes a signal's record right after the PubAck, so that the dashboard lists it
at once, but that write is not the guarantee. An API that dies after the PubAck, a
MongoDB away at that moment, or a publish whose answer was lost (`outcome_unknown`: the
stream may hold the signal, and the subscribers trade it) would leave orders pointing at
a signal the provider's history does not show. So the ledger has a durable consumer of
its own on SIGNALS and acks a signal once MongoDB holds its record. `$setOnInsert`
leaves a record that is already there as it is: the API's, or the ledger's own from an
earlier delivery — the same signal, the same fields. That includes who sent it
(``sent_by``): the API stamps it into the published signal, so this record names the
sender without asking anyone, exactly as the API's would have.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

import msgspec
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext
from pymongo import UpdateOne

from apps.core.messages import signal_decoder
from apps.core.nats import fetched
from apps.core.records import SignalRecord, record_of
from apps.core.topology import Topology
from apps.ledger.track import TrackKeeper

log = logging.getLogger("ledger.signals")

FETCH_BATCH = 256
# How long one fetch waits for a signal; also how long stopping can take.
FETCH_WAIT = 1.0


def record_write(record: SignalRecord) -> UpdateOne:
    document = record.model_dump_doc()
    del document["_id"]
    return UpdateOne({"_id": record.id}, {"$setOnInsert": document}, upsert=True)


async def write_records(signals: Any, msgs: Sequence[Msg], track: TrackKeeper | None = None) -> int:
    """Write the records of ``msgs`` into the ``signals`` collection (and, with
    ``track``, their facts into the signals' results) and ack them; the number written.
    A message that is not a signal is terminated (it stays in the stream
    for inspection); when MongoDB refuses, every message is redelivered a second later."""
    writes: list[UpdateOne] = []
    facts: list[dict[str, Any]] = []
    readable: list[Msg] = []
    for msg in msgs:
        try:
            record = record_of(signal_decoder.decode(msg.data))
            writes.append(record_write(record))
            facts.append({"_id": record.id, **record.model_dump_doc()})
            readable.append(msg)
        except (msgspec.ValidationError, msgspec.DecodeError):
            log.error("undecodable signal on %s: %r", msg.subject, msg.data[:200])
            await msg.term()
    if not writes:
        return 0
    try:
        await signals.bulk_write(writes, ordered=False)
        if track is not None:
            await track.record_signals(facts)
    except Exception:
        log.exception("MongoDB did not take %d signal records; redelivering", len(writes))
        await asyncio.gather(*(m.nak(delay=1) for m in readable), return_exceptions=True)
        return 0
    await asyncio.gather(*(m.ack() for m in readable), return_exceptions=True)
    return len(writes)


async def keep_signal_records(
    js: JetStreamContext,
    topology: Topology,
    signals: Any,
    stop: asyncio.Event,
    track: TrackKeeper | None = None,
) -> None:
    """Until ``stop`` is set: the `ledger` consumer of SIGNALS into ``signals``."""
    sub = await js.pull_subscribe_bind("ledger", topology.stream("SIGNALS"))
    try:
        while not stop.is_set():
            # Nothing on a timeout, an outage or a consumer between leaders.
            msgs = await fetched(partial(sub.fetch, FETCH_BATCH, timeout=FETCH_WAIT), FETCH_WAIT)
            if msgs:
                await write_records(signals, msgs, track)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
