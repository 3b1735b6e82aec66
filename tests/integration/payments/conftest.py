"""Fixtures of the payment tests: the live API over a socket with payments on, the Stripe
stand-in delivering its webhooks to it, the Deriv simulator for the broker accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from odmantic import AIOEngine
from redis.asyncio import Redis

from apps.core.db import connect_db
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import ApiServer
from tests.fixtures.stripe_sim import StripeSimHandle, paid_settings, stripe_sim

__all__ = ["stripe_sim"]

GRACE_DAYS = 0.5


@pytest.fixture
def api_settings(settings: Settings, sim: SimHandle, stripe_sim: StripeSimHandle) -> Settings:
    return paid_settings(
        replace(settings, deriv_url=sim.url),
        stripe_sim,
        payment_grace_days=GRACE_DAYS,
        # The tests run the sweep themselves, at the times they choose.
        payment_sweep_seconds=3600.0,
    )


@pytest.fixture
async def stripe(stripe_sim: StripeSimHandle, api_server: ApiServer) -> StripeSimHandle:
    """The stand-in, delivering to the live API."""
    await stripe_sim.point_webhooks_at(api_server.url)
    return stripe_sim


@pytest.fixture
async def stores(api_settings: Settings) -> AsyncIterator[tuple[AIOEngine, Redis, Topology]]:
    """The API's MongoDB and Redis, for the sweep at a time the test chooses and the
    router's view of a subscription."""
    mongo, db = connect_db(api_settings.mongodb_uri, api_settings.mongodb_database)
    redis = connect_redis(api_settings.redis_url)
    try:
        yield db, redis, Topology(api_settings.namespace)
    finally:
        await redis.aclose()
        mongo.close()
