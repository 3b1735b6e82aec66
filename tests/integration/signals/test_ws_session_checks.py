"""A WebSocket session keeps no right longer than HTTP would: every signal is checked on
its own (revoked session, deleted account, changed role, the channel's ACL), and the
periodic re-check ends a session whose watched channel is no longer allowed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from odmantic import AIOEngine
from redis.asyncio import Redis
from websockets.exceptions import ConnectionClosed

from apps.api.auth.principals import user_changed, user_deleted
from apps.api.auth.service import create_user
from apps.api.models import User as UserDocument
from apps.core.db import connect_db
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.live_api import PASSWORD, Api, ApiServer, User
from tests.integration.signals.test_signal_intake import SIGNAL, connect_ws


@pytest.fixture
async def stores(settings: Settings) -> AsyncIterator[tuple[AIOEngine, Redis, Topology]]:
    mongo, db = connect_db(settings.mongodb_uri, settings.mongodb_database)
    redis = connect_redis(settings.redis_url)
    try:
        yield db, redis, Topology(settings.namespace)
    finally:
        await redis.aclose()
        mongo.close()


async def _signal(ws: Any, channel: str, ref: str) -> dict[str, Any]:
    """Send a signal; its answer (progress frames of other signals are skipped)."""
    await ws.send(json.dumps({"type": "signal", "channel_id": channel, "ref": ref, **SIGNAL}))
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if message.get("ref") == ref or message["type"] == "error":
            return message


async def _closed_with(ws: Any) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 30)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_a_signal_after_logout_or_account_deletion_ends_the_session_at_once(
    api_server: ApiServer, http: Api, stores: tuple[AIOEngine, Redis, Topology]
) -> None:
    db, redis, topology = stores
    for ending in ("logout", "deletion"):
        owner = await http.user("provider", ending)
        channel = await http.channel(owner)
        ws = await connect_ws(api_server, owner.access_token)
        assert (await _signal(ws, channel, "1"))["type"] == "accepted"
        if ending == "logout":
            await http.ok("POST", "/api/v1/auth/logout", owner)
        else:
            user = await db.find_one(UserDocument, UserDocument.id == owner.id)
            assert user is not None
            await db.delete(user)
            await user_deleted(redis, topology, owner.id)
        # No waiting for a periodic re-check: this very signal is refused.
        answer = await _signal(ws, channel, "2")
        assert answer["type"] == "error" and answer["error"]["code"] == "session_ended"
        assert await _closed_with(ws) == 4401, ending


async def test_a_demoted_admin_is_refused_at_once_and_loses_the_watched_channel(
    api_server: ApiServer, http: Api, stores: tuple[AIOEngine, Redis, Topology]
) -> None:
    db, redis, topology = stores
    owner = await http.user("provider", "owner")
    channel = await http.channel(owner)
    email = f"admin-{id(stores)}@example.test"
    await create_user(
        db,
        email=email,
        password=PASSWORD,
        display_name="Admin",
        account_type="provider",
        is_admin=True,
    )
    login = await http.ok("POST", "/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    admin = User("", email, login["access_token"])
    ws = await connect_ws(api_server, admin.access_token)
    # Admins may signal any channel; the socket then watches it.
    assert (await _signal(ws, channel, "1"))["type"] == "accepted"

    user = await db.find_one(UserDocument, UserDocument.email == email)
    assert user is not None
    user.is_admin = False
    await db.save(user)
    await user_changed(redis, topology, user)
    answer = await _signal(ws, channel, "2")
    assert (answer["type"], answer["ref"], answer["error"]["code"]) == ("error", "2", "forbidden")
    # The re-check (at most a second later) stops the feed it no longer may see.
    await asyncio.sleep(1.1)
    await ws.send(json.dumps({"type": "ping"}))
    assert await _closed_with(ws) == 4403


async def test_a_removed_delegate_is_refused_at_once_and_then_disconnected(
    api_server: ApiServer, http: Api
) -> None:
    owner = await http.user("provider", "owner")
    trader = await http.user("provider", "trader")
    channel = await http.channel(owner)
    await http.delegate(owner, channel, trader)
    ws = await connect_ws(api_server, trader.access_token)
    assert (await _signal(ws, channel, "1"))["type"] == "accepted"
    await http.ok("DELETE", f"/api/v1/channels/{channel}/delegates/{trader.id}", owner)
    answer = await _signal(ws, channel, "2")
    assert (answer["ref"], answer["error"]["code"]) == ("2", "forbidden")
    await asyncio.sleep(1.1)
    await ws.send(json.dumps({"type": "ping"}))
    assert await _closed_with(ws) == 4403


async def test_a_channel_first_signalled_from_the_socket_reports_that_signals_progress(
    api_server: ApiServer, http: Api
) -> None:
    """The socket was opened before the delegation, so it did not watch the channel yet:
    it starts watching with its first signal there, and sees that signal's progress."""
    owner = await http.user("provider", "owner")
    trader = await http.user("provider", "trader")
    channel = await http.channel(owner)
    ws = await connect_ws(api_server, trader.access_token)
    await http.delegate(owner, channel, trader)
    accepted = await _signal(ws, channel, "1")
    assert accepted["type"] == "accepted"
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if message["type"] == "progress":
            assert message["signal_id"] == accepted["signal_id"]
            break
    await ws.close()
