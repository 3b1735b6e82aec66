"""The scraped metrics tell what the books tell: after one signal to 30 subscribers through
the real services, the workers' ``placed`` counter equals the ledger's placed count and the
API counted one more accepted signal; every service answers its scrape."""

from __future__ import annotations

import httpx
from nats.aio.client import Client as NATS
from prometheus_client.parser import text_string_to_metric_families

from apps.core.embedded import free_port
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.signal_stats import signal_counts_from
from apps.core.topology import Topology
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import Api, ApiServer
from tests.fixtures.pipeline import Pipeline, seed_subscribers
from tests.fixtures.waiting import wait_for

SIGNAL = {"asset": "R_100", "direction": "CALL", "expiry_seconds": 15, "stake": "1"}
SUBSCRIBERS = 30


async def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a metrics endpoint, by name and labels."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def test_scraped_counters_equal_what_the_ledger_shows(
    api_server: ApiServer,
    http: Api,
    pipeline: Pipeline,
    sim: SimHandle,
    settings: Settings,
    nc: NATS,
) -> None:
    provider = await http.user("provider", "provider")
    channel = await http.channel(provider)
    await seed_subscribers(pipeline.settings, sim, channel, count=SUBSCRIBERS, accounts=SUBSCRIBERS)
    ports = {name: free_port() for name in ("router", "ledger", "worker")}
    for name, port in ports.items():
        await pipeline.start(name, METRICS_PORT=str(port))
    await pipeline.ready(nc)
    urls = {name: f"http://127.0.0.1:{port}/metrics" for name, port in ports.items()}
    api_metrics = f"{api_server.url}/metrics"
    accepted_before = total(await scrape(api_metrics), "copier_signals_total", outcome="accepted")

    sent = await http.ok("POST", f"/api/v1/channels/{channel}/signals", provider, json=SIGNAL)
    signal_id = sent["signal_id"]
    redis = connect_redis(settings.redis_url)
    stats_key = Topology(settings.namespace).signal_stats_key(signal_id)

    async def counts() -> dict[str, int]:
        figures = signal_counts_from(await redis.hgetall(stats_key))  # type: ignore[misc]
        return figures["counts"]  # type: ignore[no-any-return]

    try:

        async def all_final() -> bool:
            c = await counts()
            return c["total"] == SUBSCRIBERS and sum(c[s] for s in c if s != "total") == SUBSCRIBERS

        await wait_for(all_final, timeout=90, what="every order to reach a final state")
        placed = (await counts())["placed"]
        assert placed == SUBSCRIBERS, (await counts(), pipeline.log("worker")[-3000:])
    finally:
        await redis.aclose()

    worker = await scrape(urls["worker"])
    assert total(worker, "copier_orders_total", state="placed", broker="deriv") == placed
    assert total(worker, "copier_orders_total") == placed  # nothing else happened to them
    assert total(worker, "copier_stage_seconds_count", stage="accept_to_placed") == placed
    assert total(worker, "copier_stage_seconds_count", stage="routed_to_placed") == placed
    assert total(worker, "copier_broker_call_seconds_count", broker="deriv") >= 1
    assert total(worker, "copier_valkey_script_seconds_count", script="markers_claim") >= 1
    assert total(worker, "copier_valkey_script_seconds_count", script="markers_finish") >= 1

    api = await scrape(api_metrics)
    assert total(api, "copier_signals_total", outcome="accepted") == accepted_before + 1
    assert ("copier_websockets_open", frozenset()) in api

    router = await scrape(urls["router"])
    assert total(router, "copier_stage_seconds_count", stage="accept_to_routed") == 1

    ledger = await scrape(urls["ledger"])
    assert total(ledger, "copier_valkey_script_seconds_count", script="ledger_apply") >= 1
    assert ("copier_ledger_lag_seconds", frozenset()) in ledger

    # Each consumer's process reports its own consumer and streams (refreshed every few s).
    topology = Topology(settings.namespace)
    expected = {
        "router": (topology.stream("SIGNALS"), "router"),
        "ledger": (topology.stream("EXECUTIONS"), "ledger"),
        "worker": (topology.stream("ORDERS"), "broker-deriv"),
    }
    for name, (stream, consumer) in expected.items():

        async def reported(
            url: str = urls[name], stream: str = stream, consumer: str = consumer
        ) -> bool:
            samples = await scrape(url)
            labels = frozenset({("stream", stream), ("consumer", consumer)})
            return ("copier_consumer_pending_messages", labels) in samples and (
                total(samples, "copier_stream_replicas", stream=stream) >= 1
            )

        await wait_for(reported, timeout=30, what=f"the {name}'s JetStream gauges")
