"""A signal that waited longer than its validity is never traded."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from nats.aio.client import Client as NATS

from apps.core.settings import Settings
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import Api, ApiServer
from tests.fixtures.pipeline import Pipeline, seed_subscribers
from tests.fixtures.waiting import wait_for
from tests.integration.pipeline.test_signal_pipeline import (
    SIGNAL,
    contracts_by_order,
    signal_stats,
)


@pytest.fixture
def signal_validity() -> float:
    return 1.0


@pytest.fixture
def api_settings(pipeline_settings: Settings) -> Settings:
    return pipeline_settings


async def test_a_stale_signal_places_nothing(
    api_server: ApiServer, http: Api, pipeline: Pipeline, sim: SimHandle, nc: NATS
) -> None:
    provider = await http.user("provider", "provider")
    channel = await http.channel(provider)
    await seed_subscribers(pipeline.settings, sim, channel, count=20, accounts=4)
    sent = await http.ok("POST", f"/api/v1/channels/{channel}/signals", provider, json=SIGNAL)
    # The router was down for longer than the signal's validity (1 s here).
    await asyncio.sleep(1.2)
    for name in ("router", "ledger", "worker"):
        await pipeline.start(name)
    await pipeline.ready(nc)

    async def finished() -> bool:
        s = await signal_stats(http, provider, sent["signal_id"])
        return bool(s["done"])

    await wait_for(finished, timeout=60, what="the stale signal to be closed")
    stats = await signal_stats(http, provider, sent["signal_id"])
    assert stats["counts"]["expired"] == 20 and stats["counts"]["placed"] == 0
    assert contracts_by_order(await sim.ledger(), sent["signal_id"]) == Counter()
