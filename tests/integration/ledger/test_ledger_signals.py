"""Every signal the SIGNALS stream holds gets its MongoDB record, from the ledger.

The API writes a signal's record after its PubAck, but an API that dies right after it,
or a publish whose answer was lost, leaves a signal that the subscribers trade and the
provider's history would never show. Real NATS and the MongoDB wire server."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from motor.motor_asyncio import AsyncIOMotorClient
from nats.aio.client import Client as NATS
from odmantic import AIOEngine

from apps.core.db import connect_db
from apps.core.embedded import free_port
from apps.core.messages import Signal, encode
from apps.core.nats import ensure_topology
from apps.core.records import SignalRecord, record_of
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.ledger.main import run
from apps.ledger.signals import write_records
from tests.fixtures.factories import make_signal
from tests.fixtures.waiting import wait_for


async def publish(nc: NATS, topology: Topology, s: Signal) -> None:
    """As the API publishes a signal (its subject, its Nats-Msg-Id)."""
    await nc.jetstream().publish(
        topology.signal_subject(s.channel_id), encode(s), headers={"Nats-Msg-Id": s.signal_id}
    )


async def records(engine: AIOEngine, want: int) -> dict[str, SignalRecord]:
    async def enough() -> dict[str, SignalRecord] | None:
        found = {r.id: r for r in await engine.find(SignalRecord)}
        return found if len(found) >= want else None

    return await wait_for(enough, what=f"{want} signal records")


async def test_a_signal_without_the_apis_record_gets_one_and_an_existing_record_is_kept(
    nc: NATS, settings: Settings
) -> None:
    topology = Topology(settings.namespace)
    await ensure_topology(nc, topology)
    mongo, engine = connect_db(settings.mongodb_uri, settings.mongodb_database)
    orphan = make_signal("ch1", stake="2.35", client_id="cli-1")  # the API died after the PubAck
    recorded = make_signal("ch2")  # the API's write made it
    await engine.save(record_of(recorded).model_copy(update={"asset": "as the API wrote it"}))
    for s in (orphan, recorded):
        await publish(nc, topology, s)
    # Not a signal: terminated (kept in the stream for inspection), never retried forever.
    await nc.jetstream().publish(topology.signal_subject("ch1"), b"{not json")

    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop))
    try:
        found = await records(engine, 2)

        async def all_acked() -> bool:
            info = await nc.jetstream().consumer_info(topology.stream("SIGNALS"), "ledger")
            return info.num_pending == 0 and info.num_ack_pending == 0

        await wait_for(all_acked, what="the ledger to ack every signal")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

    assert set(found) == {orphan.signal_id, recorded.signal_id}
    # Read back through the model the API lists with: the same fields, the stake exact.
    assert found[orphan.signal_id] == record_of(orphan)
    assert found[orphan.signal_id].stake == Decimal("2.35")
    # $setOnInsert: the record that was there is left as it is.
    assert found[recorded.signal_id].asset == "as the API wrote it"
    mongo.close()


async def test_records_mongodb_did_not_take_are_delivered_again(
    nc: NATS, settings: Settings
) -> None:
    topology = Topology(settings.namespace)
    await ensure_topology(nc, topology)
    s = make_signal("ch1")
    await publish(nc, topology, s)
    sub = await nc.jetstream().pull_subscribe_bind("ledger", topology.stream("SIGNALS"))
    # A MongoDB that cannot be reached: nothing is acked.
    away: AsyncIOMotorClient[dict[str, object]] = AsyncIOMotorClient(
        f"mongodb://127.0.0.1:{free_port()}/?directConnection=true",
        serverSelectionTimeoutMS=300,
    )
    first = await sub.fetch(10, timeout=5)
    assert await write_records(away[settings.mongodb_database]["signals"], first) == 0
    away.close()

    mongo, engine = connect_db(settings.mongodb_uri, settings.mongodb_database)
    again = await sub.fetch(10, timeout=5)  # after the nak's one-second delay
    assert [m.metadata.num_delivered for m in again] == [2]
    assert await write_records(engine.get_collection(SignalRecord), again) == 1
    assert await engine.find_one(SignalRecord, SignalRecord.id == s.signal_id) == record_of(s)
    await sub.unsubscribe()
    mongo.close()
