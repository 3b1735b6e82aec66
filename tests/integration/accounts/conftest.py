"""Fixtures for the accounts tests: the API app in process on the real servers, a Deriv
peer, the IQ Option simulator in a thread of its own, and the shared driver
(tests/fixtures/live_api.py) over a Litestar test client."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from odmantic import AIOEngine
from redis.asyncio import Redis
from websockets.sync.server import ServerConnection, serve

from apps.api.app import create_app
from apps.brokers.iqoption.simulator import (
    IQOptionSimulator,
    RunningSimulator,
    SimConfig,
    running_simulator,
)
from apps.core.db import connect_db
from apps.core.embedded import free_port
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.iqoption_sim import TIME_SCALE, IQOptionSim
from tests.fixtures.live_api import Api


@dataclass
class FakeDeriv:
    """A tiny Deriv API v3 peer answering `authorize` like Deriv does (until the simulator
    lands on its branch). ``accounts`` maps token → authorize reply."""

    url: str
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)

    async def token(self, currency: str = "USD", balance: str = "1000") -> str:
        """Open an account at the peer (a :class:`tests.fixtures.live_api.BrokerDesk`)."""
        token = f"tok{uuid.uuid4().hex[:16]}"
        loginid = f"CR{len(self.accounts) + 1000}"
        self.accounts[token] = {"loginid": loginid, "currency": currency, "balance": balance}
        return token


# The peer's own logger stays at INFO: at DEBUG websockets prints every frame, tokens
# included, which would pollute the "no secret in any log line" test with the peer's lines.
_peer_log = logging.getLogger("tests.fake_deriv")
_peer_log.setLevel(logging.INFO)


@contextlib.contextmanager
def running_fake_deriv() -> Iterator[FakeDeriv]:
    """Runs in its own thread: Litestar's test client serves the app from a portal thread
    and blocks the test's event loop while a request is in flight."""
    port = free_port()
    peer = FakeDeriv(url=f"ws://127.0.0.1:{port}/websockets/v3")

    def handler(ws: ServerConnection) -> None:
        for raw in ws:
            request = json.loads(raw)
            peer.received.append(request)
            reply: dict[str, Any] = {"echo_req": request, "msg_type": "authorize"}
            if "req_id" in request:
                reply["req_id"] = request["req_id"]
            account = peer.accounts.get(str(request.get("authorize")))
            if account is None:
                reply["error"] = {"code": "InvalidToken", "message": "The token is invalid."}
            else:
                reply["authorize"] = account
            ws.send(json.dumps(reply))

    server = serve(handler, "127.0.0.1", port, logger=_peer_log)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def fake_deriv() -> Iterator[FakeDeriv]:
    with running_fake_deriv() as peer:
        yield peer


@contextlib.contextmanager
def iqoption_sim_in_thread() -> Iterator[RunningSimulator[IQOptionSimulator]]:
    """The real IQ Option simulator on an event loop of its own thread: the test client
    blocks the test's loop while the API verifies an account at the simulator."""
    loop = asyncio.new_event_loop()
    started: concurrent.futures.Future[tuple[RunningSimulator[IQOptionSimulator], asyncio.Event]]
    started = concurrent.futures.Future()

    async def serve() -> None:
        stop = asyncio.Event()
        try:
            async with running_simulator(SimConfig(time_scale=TIME_SCALE)) as serving:
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


def with_peer(settings: Settings, peer: FakeDeriv) -> Settings:
    """``settings`` with the API verifying broker tokens at ``peer``."""
    return replace(settings, deriv_url=peer.url, broker_verify_timeout_seconds=3.0)


@pytest.fixture
def accounts_settings(settings: Settings, fake_deriv: FakeDeriv) -> Settings:
    return with_peer(settings, fake_deriv)


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
def api(client: AsyncTestClient[Litestar], stores: Stores, fake_deriv: FakeDeriv) -> Api:
    return Api(client, stores.db, fake_deriv)


def decimal(value: Any) -> Decimal:
    return Decimal(str(value))
