"""A store that does not answer is a 503 with Retry-After and a plain message, on every
route that needs it — never a 500. The API under test runs on the real servers but is
pointed at a closed port for one store; a second API on the healthy stores (same keys)
registers the users."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from apps.api.app import create_app
from apps.core.embedded import free_port
from apps.core.settings import Settings
from tests.fixtures.live_api import PASSWORD, Api, ApiServer, User


@pytest.fixture
async def redis_down(accounts_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A served API (requests run concurrently, unlike the in-process test client's): each
    route waits out the client's retries against the closed port, all at once."""
    server = ApiServer(replace(accounts_settings, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            yield client
    finally:
        server.stop()


@pytest.fixture
async def mongo_down(accounts_settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    broken = replace(
        accounts_settings,
        mongodb_uri=f"mongodb://127.0.0.1:{free_port()}/?directConnection=true",
    )
    async with AsyncTestClient(app=create_app(broken)) as client:
        yield client


def assert_unavailable(response: Any, store: str) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    error = response.json()["error"]
    assert error["code"] == "unavailable"
    assert store in error["message"] and "try again" in error["message"]


async def test_valkey_down_is_a_503_on_login_and_on_every_route_that_needs_it(
    api: Api, redis_down: httpx.AsyncClient
) -> None:
    user: User = await api.user("provider", "down")
    login = await redis_down.post(
        "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
    )
    assert_unavailable(login, "Valkey")
    assert_unavailable(await redis_down.get("/api/v1/signals/s1", headers=user.headers), "Valkey")

    schema = (await redis_down.get("/schema/openapi.json")).json()
    operations = [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]
    responses = await asyncio.gather(
        *(
            redis_down.request(method, path.replace("{", "").replace("}", ""), headers=user.headers)
            for method, path, _ in operations
        )
    )
    answers = {}
    for (method, path, operation), response in zip(operations, responses, strict=True):
        answers[method.upper(), path] = response.status_code
        if "security" in operation and "requestBody" not in operation:
            assert_unavailable(response, "Valkey")
    assert not [key for key, status in answers.items() if status >= 500 and status != 503]
    # What needs only MongoDB still works.
    assert (await redis_down.get("/api/v1/channels")).status_code == 200


async def test_mongodb_down_is_a_503(api: Api, mongo_down: AsyncTestClient[Litestar]) -> None:
    user = await api.user("provider", "mdown")
    login = await mongo_down.post(
        "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
    )
    assert_unavailable(login, "MongoDB")
    assert_unavailable(await mongo_down.get("/api/v1/channels"), "MongoDB")
    assert_unavailable(await mongo_down.get("/api/v1/me", headers=user.headers), "MongoDB")
