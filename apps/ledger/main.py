"""The ledger service: EXECUTIONS → MongoDB books and statistics.

``python -m apps.ledger.main``; any number of instances share the durable `ledger`.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec
from nats.errors import TimeoutError as NatsTimeout

from apps.core.db import connect_db
from apps.core.messages import ExecutionEvent, execution_event_decoder
from apps.core.nats import connect, ensure_topology
from apps.core.redis import connect_redis
from apps.core.service import run_service
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.ledger.book import Book

log = logging.getLogger("ledger")
FETCH_BATCH = 2000


async def run(settings: Settings, stop: asyncio.Event) -> None:
    topology = Topology(settings.namespace)
    nc = await connect(settings.nats_url, name="copier-ledger")
    await ensure_topology(nc, topology)
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    redis = connect_redis(settings.redis_url)
    book = Book(redis, mongo[settings.mongodb_database], topology)
    sub = await nc.jetstream().pull_subscribe_bind("ledger", topology.stream("EXECUTIONS"))
    try:
        while not stop.is_set():
            try:
                msgs = await sub.fetch(FETCH_BATCH, timeout=0.5)
            except (NatsTimeout, TimeoutError):
                # nats-py raises the builtin TimeoutError too when a fetch finds nothing
                # (nats/js/client.py _fetch_n); it is no reason to exit.
                continue
            events: list[ExecutionEvent] = []
            for msg in msgs:
                try:
                    events.append(execution_event_decoder.decode(msg.data))
                except (msgspec.ValidationError, msgspec.DecodeError):
                    # A message we cannot read will never become readable: terminate it
                    # (it stays in the stream for inspection) instead of redelivering.
                    log.error("undecodable execution on %s: %r", msg.subject, msg.data[:200])
                    await msg.term()
            try:
                await book.apply(events)
            except Exception:
                log.exception(
                    "could not record %d executions; they will be redelivered", len(events)
                )
                for msg in msgs:
                    await msg.nak(delay=1)
                continue
            await asyncio.gather(*(msg.ack() for msg in msgs))
    finally:
        await sub.unsubscribe()
        await nc.drain()
        await redis.aclose()
        mongo.close()


def main() -> None:
    run_service("ledger", run)


if __name__ == "__main__":
    main()
