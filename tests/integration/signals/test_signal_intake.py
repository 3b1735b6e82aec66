"""Signals enter through the live API (HTTP and WebSocket), as providers send them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import websockets
from nats.aio.client import Client as NATS
from websockets.exceptions import ConnectionClosed, InvalidStatus

from apps.core.messages import signal_decoder
from apps.core.redis import connect_redis
from apps.core.routing import RoutingRecord, pack_record
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.ledger.main import run as run_ledger
from apps.router.main import consume as run_router
from tests.fixtures.live_api import Api, ApiServer, User
from tests.fixtures.waiting import wait_for

SIGNAL = {"asset": "EURUSD", "direction": "CALL", "expiry_seconds": 60, "stake": "10"}


async def stream_signals(nc: NATS, settings: Settings) -> list[Any]:
    js = nc.jetstream()
    stream = Topology(settings.namespace).stream("SIGNALS")
    info = await js.stream_info(stream)
    return [
        await js.get_msg(stream, seq)
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
        if info.state.messages
    ]


async def test_owner_and_delegate_send_others_are_refused_and_nothing_is_published(
    http: Api, nc: NATS, settings: Settings
) -> None:
    owner = await http.user("provider", "owner")
    trader = await http.user("provider", "trader")
    stranger = await http.user("provider", "stranger")
    subscriber = await http.user("subscriber", "sub")
    channel = await http.channel(owner)
    await http.delegate(owner, channel, trader)

    refused = await http.call("POST", f"/api/v1/channels/{channel}/signals", stranger, json=SIGNAL)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert (
        await http.call("POST", f"/api/v1/channels/{channel}/signals", subscriber, json=SIGNAL)
    ).status_code == 403
    assert (
        await http.call("POST", f"/api/v1/channels/{channel}/signals", json=SIGNAL)
    ).status_code == 401
    assert await stream_signals(nc, settings) == []

    before = time.time()
    accepted = await http.ok("POST", f"/api/v1/channels/{channel}/signals", owner, json=SIGNAL)
    by_trader = await http.ok("POST", f"/api/v1/channels/{channel}/signals", trader, json=SIGNAL)
    messages = await stream_signals(nc, settings)
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [
        accepted["signal_id"],
        by_trader["signal_id"],
    ]
    signal = signal_decoder.decode(messages[0].data)
    assert signal.sender_id == owner.id and signal.stake == Decimal("10")
    assert before <= signal.created_at <= time.time()
    assert signal.valid_until == pytest.approx(signal.created_at + 5)
    assert messages[0].subject == f"{settings.namespace}.signals.{channel}"

    shown = await http.ok("GET", f"/api/v1/signals/{accepted['signal_id']}", trader)
    assert shown["asset"] == "EURUSD" and shown["counts"]["placed"] == 0
    listed = await wait_for(lambda: _listed(http, owner, channel), what="the signal listed")
    assert [s["signal_id"] for s in listed] == [by_trader["signal_id"], accepted["signal_id"]]
    assert (
        await http.call("GET", f"/api/v1/signals/{accepted['signal_id']}", stranger)
    ).status_code == 404

    # A removed delegate loses the right at once.
    await http.ok("DELETE", f"/api/v1/channels/{channel}/delegates/{trader.id}", owner)
    again = await http.call("POST", f"/api/v1/channels/{channel}/signals", trader, json=SIGNAL)
    assert again.status_code == 403


async def _listed(http: Api, owner: User, channel: str) -> list[Any] | None:
    listed = await http.ok("GET", f"/api/v1/channels/{channel}/signals", owner)
    return listed if len(listed) == 2 else None


async def test_a_repeated_client_id_returns_the_first_signal(
    http: Api, nc: NATS, settings: Settings
) -> None:
    owner = await http.user("provider", "owner")
    channel = await http.channel(owner)
    body = {**SIGNAL, "client_id": "click-42"}
    first, second = [
        await http.call("POST", f"/api/v1/channels/{channel}/signals", owner, json=body)
        for _ in range(2)
    ]
    assert first.status_code == second.status_code == 202
    assert first.json()["signal_id"] == second.json()["signal_id"]
    assert (first.json()["duplicate"], second.json()["duplicate"]) == (False, True)
    assert len(await stream_signals(nc, settings)) == 1


async def test_a_refused_signal_does_not_use_up_its_client_id(
    http: Api, nc: NATS, settings: Settings
) -> None:
    owner = await http.user("provider", "owner")
    trader = await http.user("provider", "trader")
    channel = await http.channel(owner)
    path = f"/api/v1/channels/{channel}/signals"
    body = {**SIGNAL, "client_id": "click-7"}
    assert (await http.call("POST", path, trader, json=body)).status_code == 403
    assert (
        await http.call("POST", "/api/v1/channels/nope/signals", trader, json=body)
    ).status_code == 404
    await http.delegate(owner, channel, trader)
    sent = await http.ok("POST", path, trader, json=body)
    assert sent["duplicate"] is False
    assert [m.headers["Nats-Msg-Id"] for m in await stream_signals(nc, settings)] == [
        sent["signal_id"]
    ]
    # A refused signal is not shown either (its cache entry was taken back).
    redis = connect_redis(settings.redis_url)
    keys = await redis.keys(f"{settings.namespace}:sig:*:signal")
    await redis.aclose()
    assert keys == [f"{settings.namespace}:sig:{sent['signal_id']}:signal".encode()]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"asset": "DOGEUSD"}, "unknown_asset"),
        ({"stake": "0.1"}, "invalid_stake"),
        ({"stake": "10.001"}, "invalid_stake"),
        ({"stake": "1000000000"}, "invalid_stake"),
        # Not written as a plain decimal: refused by the body's one money rule.
        ({"stake": "1e9"}, "validation_failed"),
        ({"stake": "NaN"}, "validation_failed"),
        ({"stake": "1_000"}, "validation_failed"),
        ({"stake": " 10 "}, "validation_failed"),
        ({"expiry_seconds": "60"}, "validation_failed"),
        ({"expiry_seconds": 5}, None),
        ({"expiry_tolerance_seconds": 301}, "validation_failed"),
        ({"expiry_tolerance_seconds": -1}, "validation_failed"),
        ({"expiry_tolerance_seconds": "30"}, "validation_failed"),
        ({"expiry_tolerance_seconds": 2.5}, "validation_failed"),
        ({"direction": "UP"}, None),
        ({"stake": None}, None),
        ({"client_id": "x" * 500}, None),
        ({"extra": 1}, None),
    ],
)
async def test_bad_signals_get_a_clear_400(
    http: Api, nc: NATS, settings: Settings, change: dict[str, Any], code: str | None
) -> None:
    owner = await http.user("provider", "owner")
    channel = await http.channel(owner)
    response = await http.call(
        "POST", f"/api/v1/channels/{channel}/signals", owner, json={**SIGNAL, **change}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["message"]
    if code:
        assert error["code"] == code
    assert await stream_signals(nc, settings) == []


async def test_a_signal_may_state_its_expiry_tolerance_over_http_and_websocket(
    api_server: ApiServer, http: Api, nc: NATS, settings: Settings
) -> None:
    owner = await http.user("provider", "owner")
    channel = await http.channel(owner)
    path = f"/api/v1/channels/{channel}/signals"
    await http.ok("POST", path, owner, json=SIGNAL)
    await http.ok("POST", path, owner, json={**SIGNAL, "expiry_tolerance_seconds": 0})
    ws = await connect_ws(api_server, owner.access_token)
    body = {"type": "signal", "channel_id": channel, "expiry_tolerance_seconds": 300, **SIGNAL}
    await ws.send(json.dumps(body))
    assert json.loads(await ws.recv())["type"] == "accepted"
    await ws.send(json.dumps({**body, "expiry_tolerance_seconds": 301, "ref": "r2"}))
    # The accepted signal's live progress may come first on the same socket.
    error = json.loads(await ws.recv())
    while error["type"] != "error":
        error = json.loads(await ws.recv())
    assert error["error"]["code"] == "invalid_request"
    assert "300" in error["error"]["message"]
    await ws.close()
    signals = [signal_decoder.decode(m.data) for m in await stream_signals(nc, settings)]
    assert [s.expiry_tolerance_seconds for s in signals] == [None, 0, 300]


async def test_an_out_of_range_tolerance_is_a_400_that_names_the_field_and_the_range(
    http: Api, nc: NATS
) -> None:
    owner = await http.user("provider", "owner")
    channel = await http.channel(owner)
    response = await http.call(
        "POST",
        f"/api/v1/channels/{channel}/signals",
        owner,
        json={**SIGNAL, "expiry_tolerance_seconds": 301},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "Expiry tolerance must be at most 300"
    assert error["details"][0]["key"] == "expiry_tolerance_seconds"


# --- WebSocket -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def pipeline_without_brokers(settings: Settings) -> AsyncIterator[None]:
    """Router and ledger in this process; no broker worker (these tests need refusals only)."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_router(settings, stop)),
        asyncio.create_task(run_ledger(settings, stop)),
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 15)


async def connect_ws(server: ApiServer, token: str | None, origin: str | None = None) -> Any:
    headers = {"Origin": origin} if origin else None
    ws = await websockets.connect(server.ws_url, additional_headers=headers, max_size=2**20)
    if token is not None:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        ready = json.loads(await ws.recv())
        assert ready["type"] == "ready", ready
    return ws


async def test_websocket_sends_signals_and_pushes_progress_until_every_order_is_final(
    api_server: ApiServer, http: Api, nc: NATS, settings: Settings
) -> None:
    owner = await http.user("provider", "owner")
    channel = await http.channel(owner)
    # 30 subscribers, all paused: the router refuses each, so the counts reach the total
    # without a broker (brokers are in the pipeline's end-to-end tests).
    redis = connect_redis(settings.redis_url)
    records = {
        f"sub{i:03}": pack_record(
            RoutingRecord(
                subscription_id=f"sub{i:03}",
                channel_id=channel,
                subscriber_id=f"user{i}",
                broker_kind="deriv",
                broker_account_id="ba1",
                credentials_ref="ba1",
                currency="USD",
                stake_mode="fixed",
                stake=Decimal("1"),
                max_stake=Decimal("5"),
                paused=True,
                expires_at=int(time.time()) + 3600,
            )
        )
        for i in range(30)
    }
    await redis.hset(Topology(settings.namespace).routing_key(channel), mapping=records)  # type: ignore[misc]
    await redis.aclose()

    async with pipeline_without_brokers(settings):
        ws = await connect_ws(api_server, owner.access_token)
        await ws.send(json.dumps({"type": "signal", "channel_id": channel, "ref": "r1", **SIGNAL}))
        accepted = json.loads(await ws.recv())
        assert accepted["type"] == "accepted" and accepted["ref"] == "r1"
        last: dict[str, Any] = {}
        while not last.get("done"):
            last = json.loads(await asyncio.wait_for(ws.recv(), 15))
            assert last["type"] == "progress", last
            assert last["signal_id"] == accepted["signal_id"]
        assert last["counts"] == {
            "total": 30,
            "placed": 0,
            "rejected": 30,
            "expired": 0,
            "failed": 0,
            "unknown": 0,
        }
        # The same socket refuses a signal for a channel the user may not send to.
        await ws.send(json.dumps({"type": "signal", "channel_id": "nope", "ref": "r2", **SIGNAL}))
        error = json.loads(await ws.recv())
        assert (error["type"], error["ref"], error["error"]["code"]) == ("error", "r2", "not_found")
        await ws.close()


async def test_ready_is_the_first_frame_even_while_the_channels_fan_out(
    api_server: ApiServer, http: Api, nc: NATS, settings: Settings
) -> None:
    """A socket that authenticates while its channels' signals are moving gets "ready"
    before any progress (the socket used to listen channel by channel between the ACL
    checks, so a running fan-out's progress could come first)."""
    owner = await http.user("provider", "owner")
    channels = [await http.channel(owner, f"C{i}") for i in range(16)]
    topology = Topology(settings.namespace)
    redis = connect_redis(settings.redis_url)
    stop = asyncio.Event()

    async def fan_out() -> None:
        """Every channel's signal changes its counts and announces an execution every
        few milliseconds, as a running fan-out does."""
        while not stop.is_set():
            for channel in channels:
                await redis.hincrby(topology.signal_stats_key(f"s-{channel}"), "placed", 1)  # type: ignore[misc]
                await nc.publish(topology.subject("executions", channel, f"s-{channel}"), b"{}")
            await asyncio.sleep(0.005)

    # A socket that watches throughout keeps the relay following the signals.
    watcher = await connect_ws(api_server, owner.access_token)
    seen: list[str] = []

    async def watch() -> None:
        async for frame in watcher:
            seen.append(json.loads(frame)["type"])

    tasks = [asyncio.create_task(fan_out()), asyncio.create_task(watch())]
    try:

        async def feed_running() -> bool:
            return "progress" in seen

        await wait_for(feed_running, what="progress frames flowing", every=0.01)
        for _ in range(20):
            ws = await websockets.connect(api_server.ws_url)
            await ws.send(json.dumps({"type": "auth", "token": owner.access_token}))
            first = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert first["type"] == "ready", first
            assert first["channels"] == sorted(channels)
            assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "progress"
            await ws.close()
    finally:
        stop.set()
        await watcher.close()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        await redis.aclose()


async def test_websocket_requires_auth_first_and_a_known_origin(
    api_server: ApiServer, http: Api, settings: Settings
) -> None:
    owner = await http.user("provider", "owner")
    with pytest.raises(InvalidStatus):
        await connect_ws(api_server, owner.access_token, origin="https://evil.example")
    ws = await connect_ws(api_server, None, origin="http://localhost:5173")
    await ws.send(json.dumps({"type": "signal", "channel_id": "c", **SIGNAL}))
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    ws = await connect_ws(api_server, None)
    await ws.send(json.dumps({"type": "auth", "token": owner.access_token + "x"}))
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_websocket_is_rate_limited_and_closed_on_logout(
    api_server: ApiServer, http: Api, settings: Settings
) -> None:
    owner = await http.user("provider", "owner")
    ws = await connect_ws(api_server, owner.access_token)
    for i in range(60):
        await ws.send(json.dumps({"type": "ping", "ref": str(i)}))
    replies = [json.loads(await asyncio.wait_for(ws.recv(), 30)) for _ in range(60)]
    assert any(r["type"] == "error" and r["error"]["code"] == "rate_limited" for r in replies)
    assert sum(r["type"] == "pong" for r in replies) >= 40

    # The logout reaches the open socket by itself: it closes with no message sent.
    await http.ok("POST", "/api/v1/auth/logout", owner)
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_owners_and_delegates_see_their_channels_and_the_delegate_list(http: Api) -> None:
    owner = await http.user("provider", "owner")
    trader = await http.user("provider", "trader")
    channel = await http.channel(owner)
    await http.delegate(owner, channel, trader)
    mine = await http.ok("GET", "/api/v1/me/channels", owner)
    theirs = await http.ok("GET", "/api/v1/me/channels", trader)
    assert [(c["role"], c["channel"]["id"]) for c in mine] == [("owner", channel)]
    assert [(c["role"], c["channel"]["id"]) for c in theirs] == [("delegate", channel)]
    delegates = await http.ok("GET", f"/api/v1/channels/{channel}/delegates", owner)
    assert [d["email"] for d in delegates["delegates"]] == [trader.email]
    refused = await http.call("GET", f"/api/v1/channels/{channel}/delegates", trader)
    assert refused.status_code == 403


async def test_websocket_signals_follow_the_same_number_rules(
    api_server: ApiServer, http: Api, nc: NATS, settings: Settings
) -> None:
    owner = await http.user("provider", "owner")
    channel = await http.channel(owner)
    ws = await connect_ws(api_server, owner.access_token)
    for change in ({"stake": "1_000"}, {"stake": " 10 "}, {"expiry_seconds": "60"}):
        signal = {"type": "signal", "channel_id": channel, **SIGNAL, **change}
        await ws.send(json.dumps(signal))
        answer = json.loads(await ws.recv())
        assert answer["type"] == "error", answer
        assert answer["error"]["details"][0]["key"] == next(iter(change)), answer
    await ws.close()
    assert await stream_signals(nc, settings) == []
