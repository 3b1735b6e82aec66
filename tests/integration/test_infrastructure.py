"""The shared real servers work, and `nats/` is what the server has after start-up."""

from __future__ import annotations

import json

from nats.aio.client import Client as NATS

from apps.core.nats import NATS_DIR, ensure_topology, load_definitions, server_config
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology


async def test_streams_and_consumers_on_the_server_match_nats_dir(
    nc: NATS, settings: Settings
) -> None:
    topology = Topology(settings.namespace)
    streams, consumers = load_definitions(topology)
    assert {s.name for s in streams} == {
        topology.stream(b) for b in ("SIGNALS", "ORDERS", "EXECUTIONS")
    }
    for stream in streams:
        actual = await server_config(nc, stream.name)
        for key, value in stream.config.items():
            if key != "num_replicas":
                assert actual.get(key, False if value is False else None) == value, (
                    stream.name,
                    key,
                )
    for consumer in consumers:
        actual = await server_config(nc, consumer.stream, consumer.durable)
        for key, value in consumer.config.items():
            if key != "num_replicas":
                assert actual.get(key) == value, (consumer.durable, key)
    # The files are the plain JSON the nats CLI accepts.
    raw = json.loads((NATS_DIR / "streams" / "ORDERS.json").read_text())
    assert raw["retention"] == "workqueue"


async def test_declaring_the_topology_twice_changes_nothing(nc: NATS, settings: Settings) -> None:
    topology = Topology(settings.namespace)
    done = await ensure_topology(nc, topology)
    assert done["created"] == [] and done["updated"] == []
    streams, consumers = load_definitions(topology)
    assert sorted(done["unchanged"]) == sorted(
        [s.name for s in streams] + [f"{c.stream}/{c.durable}" for c in consumers]
    )
    assert f"{topology.stream('SIGNALS')}/ledger" in done["unchanged"]


async def test_a_drifted_consumer_is_brought_back_to_the_file(nc: NATS, settings: Settings) -> None:
    topology = Topology(settings.namespace)
    js = nc.jetstream()
    info = await js.consumer_info(topology.stream("SIGNALS"), "router")
    config = info.config
    config.max_ack_pending = 7
    await js.add_consumer(topology.stream("SIGNALS"), config)
    assert (await server_config(nc, topology.stream("SIGNALS"), "router"))["max_ack_pending"] == 7
    done = await ensure_topology(nc, topology)
    assert done["updated"] == [f"{topology.stream('SIGNALS')}/router"]
    assert (await server_config(nc, topology.stream("SIGNALS"), "router"))["max_ack_pending"] == 256


async def test_redis_and_namespaced_keys(settings: Settings) -> None:
    redis = connect_redis(settings.redis_url)
    key = Topology(settings.namespace).key("probe")
    await redis.set(key, b"1")
    assert await redis.get(key) == b"1"
    await redis.aclose()
