"""A subscriber's open WebSocket receives their trade when it is placed and again when it
settles, with the ledger not running at all: the push comes from the executions the API
receives, not from MongoDB (which never hears of the order here). Another subscriber of
the same signal gets only their own trade.

Real processes (router, Deriv worker), the live API and the Deriv simulator.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from nats.aio.client import Client as NATS

from apps.api.live import LiveRelay
from apps.core.settings import Settings
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import Api, ApiServer, User
from tests.fixtures.pipeline import Pipeline
from tests.fixtures.waiting import PATIENCE, wait_for

SIGNAL = {"asset": "R_100", "direction": "CALL", "expiry_seconds": 15, "stake": "1"}
Socket = websockets.ClientConnection


@pytest.fixture
def api_settings(pipeline_settings: Settings) -> Settings:
    return pipeline_settings


async def subscribed(http: Api, sim: SimHandle, channel_id: str, name: str) -> tuple[User, str]:
    """A subscriber copying ``channel_id`` on a simulator account; with their subscription."""
    user = await http.user("subscriber", name)
    linked = await sim.account(balance="500")
    account = await http.ok(
        "POST",
        "/api/v1/broker-accounts",
        user,
        json={"kind": "deriv", "label": "sim", "credentials": {"token": linked.token}},
    )
    await http.ok("POST", f"/api/v1/broker-accounts/{account['id']}/verify", user)
    return user, await http.subscribe(user, channel_id, account["id"], stake="2")


async def signed_in_socket(api_server: ApiServer, user: User) -> Socket:
    socket = await websockets.connect(api_server.ws_url)
    await socket.send(json.dumps({"type": "auth", "token": user.access_token}))
    ready = json.loads(await asyncio.wait_for(socket.recv(), PATIENCE))
    assert ready["type"] == "ready" and ready["user_id"] == user.id
    return socket


async def trades_until_settled(socket: Socket) -> list[dict[str, Any]]:
    """Every ``trade`` this socket receives, up to the first one that carries an outcome."""
    trades: list[dict[str, Any]] = []
    while not (trades and trades[-1]["outcome"]):
        message = json.loads(await asyncio.wait_for(socket.recv(), PATIENCE))
        if message["type"] == "trade":
            trades.append(message["trade"])
    return trades


async def frames_until_pong(socket: Socket) -> list[dict[str, Any]]:
    """What the socket holds before the answer to a ping sent now."""
    await socket.send(json.dumps({"type": "ping", "ref": "barrier"}))
    frames = []
    while (message := json.loads(await asyncio.wait_for(socket.recv(), PATIENCE)))[
        "type"
    ] != "pong":
        frames.append(message)
    return frames


async def test_a_subscriber_sees_their_trade_placed_and_settled_with_no_ledger_running(
    api_server: ApiServer, http: Api, pipeline: Pipeline, sim: SimHandle, nc: NATS
) -> None:
    provider = await http.user("provider", "provider")
    channel = await http.channel(provider)
    alice, alice_sub = await subscribed(http, sim, channel, "alice")
    bob, bob_sub = await subscribed(http, sim, channel, "bob")
    for name in ("router", "worker"):  # and no ledger
        await pipeline.start(name)
    await pipeline.ready(nc)
    assert "ledger" not in pipeline.processes

    alice_ws = await signed_in_socket(api_server, alice)
    bob_ws = await signed_in_socket(api_server, bob)
    try:
        path = f"/api/v1/channels/{channel}/signals"
        signal_id = (await http.ok("POST", path, provider, json=SIGNAL))["signal_id"]

        alice_trades = await trades_until_settled(alice_ws)
        bob_trades = await trades_until_settled(bob_ws)
        # Bob's settlement has reached the API: anything of his sent to Alice's socket
        # would be queued there before the answer to her ping.
        alice_trades += [
            m["trade"] for m in await frames_until_pong(alice_ws) if m["type"] == "trade"
        ]
    finally:
        await alice_ws.close()
        await bob_ws.close()

    for trades, subscription in ((alice_trades, alice_sub), (bob_trades, bob_sub)):
        assert {t["subscription_id"] for t in trades} == {subscription}, trades
        placed, settled = trades[0], trades[-1]
        assert placed["signal_id"] == signal_id
        assert (placed["state"], placed["outcome"]) == ("placed", None), trades
        assert (placed["asset"], placed["direction"], placed["expiry_seconds"]) == (
            "R_100",
            "CALL",
            15,
        )
        assert placed["stake"] == "2.00" and placed["broker_kind"] == "deriv"
        assert placed["contract_id"] and placed["at"] and placed["latency_ms"] is not None
        assert settled["order_id"] == placed["order_id"]
        assert settled["state"] == "placed" and settled["outcome"] in ("won", "lost")
        assert settled["profit"] is not None and settled["settled_at"] is not None

    # Nothing booked it: the orders list (the ledger's) has never heard of these trades.
    assert await http.ok("GET", "/api/v1/orders", alice) == []


async def test_a_signed_out_subscribers_socket_is_closed_and_stops_receiving_trades(
    api_server: ApiServer, http: Api
) -> None:
    relay: LiveRelay = api_server.server.config.app.state.infra.live
    subscriber = await http.user("subscriber", "leaver")
    socket = await signed_in_socket(api_server, subscriber)
    assert relay.trade_sockets(subscriber.id) == 1
    await http.ok("POST", "/api/v1/auth/logout", subscriber)

    async def closed() -> int | None:
        """Pings keep the socket busy, so it is re-checked at least once a second."""
        try:
            await socket.send(json.dumps({"type": "ping"}))
            while json.loads(await asyncio.wait_for(socket.recv(), PATIENCE))["type"] != "pong":
                pass
        except websockets.ConnectionClosed as ended:
            return ended.rcvd.code if ended.rcvd is not None else -1
        return None

    assert await wait_for(closed, what="the re-check to end the session", every=0.2) == 4401
    assert relay.trade_sockets(subscriber.id) == 0
