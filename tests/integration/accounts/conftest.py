"""Fixtures for the accounts tests: the API app in process on the real servers, the real
Deriv and IQ Option simulators each in a thread of its own (the API verifies every broker
account there, over the brokers' real protocols, before it saves one), and the shared
driver (tests/fixtures/live_api.py) over a Litestar test client."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from odmantic import AIOEngine
from redis.asyncio import Redis

from apps.api.app import create_app
from apps.brokers.deriv.simulator import SimConfig as DerivSimConfig
from apps.brokers.deriv.simulator import running_simulator as running_deriv
from apps.brokers.iqoption.simulator import SimConfig, running_simulator
from apps.brokers.simulation import RunningSimulator
from apps.core.db import connect_db
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.iqoption_sim import TIME_SCALE, IQOptionSim
from tests.fixtures.live_api import Api, SimDesk


@contextlib.contextmanager
def simulator_in_thread(
    start: Callable[[], AbstractAsyncContextManager[RunningSimulator[Any]]],
) -> Iterator[RunningSimulator[Any]]:
    """A real broker simulator on an event loop of its own thread: the test client blocks
    the test's loop while the API verifies an account at the simulator."""
    loop = asyncio.new_event_loop()
    started: concurrent.futures.Future[tuple[RunningSimulator[Any], asyncio.Event]]
    started = concurrent.futures.Future()

    async def serve() -> None:
        stop = asyncio.Event()
        try:
            async with start() as serving:
                started.set_result((serving, stop))
                await stop.wait()
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    serving, stop = started.result(timeout=30)
    try:
        yield serving
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        loop.close()


def deriv_sim_in_thread() -> contextlib.AbstractContextManager[RunningSimulator[Any]]:
    return simulator_in_thread(lambda: running_deriv(DerivSimConfig()))


def iqoption_sim_in_thread() -> contextlib.AbstractContextManager[RunningSimulator[Any]]:
    return simulator_in_thread(lambda: running_simulator(SimConfig(time_scale=TIME_SCALE)))


@pytest.fixture
async def deriv_sim() -> AsyncIterator[SimHandle]:
    """The Deriv simulator (its admin API driven from the test's loop) the API verifies
    Deriv tokens at: accounts opened there have real tokens."""
    with deriv_sim_in_thread() as serving:
        async with httpx.AsyncClient(base_url=serving.admin_url, timeout=10) as admin:
            yield SimHandle(serving, admin)


@pytest.fixture
async def iq_sim() -> AsyncIterator[IQOptionSim]:
    """The simulator (its admin API driven from the test's loop) for the API to verify
    IQ Option accounts at; ``accounts_settings`` of a test that uses it point there."""
    with iqoption_sim_in_thread() as serving:
        async with httpx.AsyncClient(base_url=serving.admin_url, timeout=10) as admin:
            yield IQOptionSim(serving, admin)


def with_iqoption(settings: Settings, sim: IQOptionSim) -> Settings:
    """``settings`` with the API verifying IQ Option accounts at ``sim``."""
    return replace(
        settings,
        iqoption_login_url=sim.login_url,
        iqoption_ws_url=sim.ws_url,
        broker_verify_timeout_seconds=5.0,
    )


def with_deriv(settings: Settings, sim: SimHandle) -> Settings:
    """``settings`` with the API verifying Deriv tokens at ``sim``."""
    return replace(settings, deriv_url=sim.url, broker_verify_timeout_seconds=5.0)


@pytest.fixture
def accounts_settings(settings: Settings, deriv_sim: SimHandle) -> Settings:
    return with_deriv(settings, deriv_sim)


@dataclass
class Stores:
    """MongoDB and Redis clients on the test's own event loop (the app's clients live on
    the test client's portal loop and must not be shared across loops)."""

    db: AIOEngine
    redis: Redis
    topology: Topology


@pytest.fixture
async def stores(accounts_settings: Settings) -> AsyncIterator[Stores]:
    mongo, db = connect_db(accounts_settings.mongodb_uri, accounts_settings.mongodb_database)
    redis = connect_redis(accounts_settings.redis_url)
    try:
        yield Stores(db, redis, Topology(accounts_settings.namespace))
    finally:
        await redis.aclose()
        mongo.close()


@pytest.fixture
def app(accounts_settings: Settings) -> Litestar:
    return create_app(accounts_settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
def api(client: AsyncTestClient[Litestar], stores: Stores, deriv_sim: SimHandle) -> Api:
    return Api(client, stores.db, SimDesk(deriv_sim))


def decimal(value: Any) -> Decimal:
    return Decimal(str(value))
