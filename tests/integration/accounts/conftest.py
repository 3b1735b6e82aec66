"""Fixtures for the accounts tests: the API app on the real servers, a Deriv peer, users."""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from odmantic import AIOEngine
from redis.asyncio import Redis
from websockets.sync.server import ServerConnection, serve

from apps.api.app import create_app
from apps.api.auth.service import create_user
from apps.core.db import connect_db
from apps.core.embedded import free_port
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology

PASSWORD = "correct horse battery staple"
_counter = itertools.count()


@dataclass
class FakeDeriv:
    """A tiny Deriv API v3 peer answering `authorize` like Deriv does (until the simulator
    lands on its branch). ``accounts`` maps token → authorize reply."""

    url: str
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)


# The peer's own logger stays at INFO: at DEBUG websockets prints every frame, tokens
# included, which would pollute the "no secret in any log line" test with the peer's lines.
_peer_log = logging.getLogger("tests.fake_deriv")
_peer_log.setLevel(logging.INFO)


@pytest.fixture
def fake_deriv() -> Iterator[FakeDeriv]:
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
def accounts_settings(settings: Settings, fake_deriv: FakeDeriv) -> Settings:
    return replace(settings, deriv_url=fake_deriv.url, broker_verify_timeout_seconds=3.0)


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


@dataclass
class Actor:
    """A logged-in user as the tests see them."""

    id: str
    email: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def unique_email(prefix: str) -> str:
    return f"{prefix}{next(_counter)}@example.test"


class Api:
    """Thin helpers over the HTTP API, so tests read as user actions."""

    def __init__(self, client: AsyncTestClient[Litestar], stores: Stores) -> None:
        self.client = client
        self.stores = stores

    async def login(self, email: str, password: str = PASSWORD) -> Actor:
        response = await self.client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        me = await self.client.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"}
        )
        return Actor(me.json()["id"], email, body["access_token"], body["refresh_token"])

    async def user(self, account_type: str = "subscriber", prefix: str = "u") -> Actor:
        email = unique_email(prefix)
        response = await self.client.post(
            "/api/v1/auth/register",
            json={
                "email": email,
                "password": PASSWORD,
                "display_name": prefix.title(),
                "account_type": account_type,
            },
        )
        assert response.status_code == 201, response.text
        return await self.login(email)

    async def admin(self) -> Actor:
        email = unique_email("admin")
        await create_user(
            self.stores.db,
            email=email,
            password=PASSWORD,
            display_name="Admin",
            account_type="provider",
            is_admin=True,
        )
        return await self.login(email)

    async def channel(self, owner: Actor, price: str = "9.99", days: int = 30) -> str:
        response = await self.client.post(
            "/api/v1/channels",
            json={
                "name": "Alpha",
                "description": "rises",
                "plan": {"price": price, "period_days": days},
            },
            headers=owner.headers,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def broker_account(self, owner: Actor, token: str = "tok123") -> str:
        response = await self.client.post(
            "/api/v1/broker-accounts",
            json={
                "kind": "deriv",
                "label": "main",
                "currency": "USD",
                "credentials": {"token": token},
            },
            headers=owner.headers,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def subscribe(
        self, subscriber: Actor, channel_id: str, account_id: str, **risk: Any
    ) -> str:
        body = {
            "broker_account_id": account_id,
            "stake_mode": "fixed",
            "stake": "5",
            "max_stake": "20",
            **risk,
        }
        response = await self.client.post(
            f"/api/v1/channels/{channel_id}/subscriptions", json=body, headers=subscriber.headers
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


@pytest.fixture
def api(client: AsyncTestClient[Litestar], stores: Stores) -> Api:
    return Api(client, stores)


def decimal(value: Any) -> Decimal:
    return Decimal(str(value))
