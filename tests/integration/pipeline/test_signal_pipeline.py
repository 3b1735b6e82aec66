"""The whole signal path, end to end, with real processes and the Deriv simulator:
API → SIGNALS → router → ORDERS → worker → broker → EXECUTIONS → ledger → live feedback."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
import websockets
from nats.aio.client import Client as NATS

from apps.brokers.deriv.adapter import order_of_contract
from apps.core.db import connect_db
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import Api, ApiServer, User
from tests.fixtures.pipeline import Pipeline, seed_subscribers
from tests.fixtures.waiting import wait_for

SIGNAL = {"asset": "R_100", "direction": "CALL", "expiry_seconds": 15, "stake": "1"}


@pytest.fixture
def api_settings(pipeline_settings: Settings) -> Settings:
    return pipeline_settings


async def signal_stats(http: Api, user: User, signal_id: str) -> dict[str, Any]:
    return await http.ok("GET", f"/api/v1/signals/{signal_id}", user)  # type: ignore[no-any-return]


def contracts_by_order(ledger: list[dict[str, Any]], signal_id: str) -> Counter[str]:
    orders: Counter[str] = Counter()
    for contract in ledger:
        passthrough = contract.get("passthrough") or {}
        if passthrough.get("signal_id") == signal_id:
            # A single buy names its order; a multi-account buy maps each loginid to one.
            orders[order_of_contract(passthrough, contract["loginid"]) or "?"] += 1
    return orders


async def test_one_signal_reaches_1000_subscribers_exactly_once_with_live_progress(
    api_server: ApiServer,
    http: Api,
    pipeline: Pipeline,
    sim: SimHandle,
    settings: Settings,
    nc: NATS,
) -> None:
    provider = await http.user("provider", "provider")
    channel = await http.channel(provider)
    # Two subscribers the way people do it: their own sim account, linked, verified, subscribed.
    people = []
    for _ in range(2):
        person = await http.user("subscriber", "sub")
        sim_account = await sim.account(balance="500")
        account = await http.ok(
            "POST",
            "/api/v1/broker-accounts",
            person,
            json={"kind": "deriv", "label": "sim", "credentials": {"token": sim_account.token}},
        )
        verified = await http.ok("POST", f"/api/v1/broker-accounts/{account['id']}/verify", person)
        assert verified["currency"] == "USD"
        await http.ok(
            "POST",
            f"/api/v1/channels/{channel}/subscriptions",
            person,
            json={
                "broker_account_id": account["id"],
                "stake_mode": "multiplier",
                "stake": "2",
                "max_stake": "5",
            },
        )
        people.append(person)
    await seed_subscribers(pipeline.settings, sim, channel, count=998, accounts=40)
    for name in ("router", "ledger", "worker"):
        await pipeline.start(name)
    await pipeline.ready(nc)

    ws = await websockets.connect(api_server.ws_url)
    await ws.send(json.dumps({"type": "auth", "token": provider.access_token}))
    assert json.loads(await ws.recv())["channels"] == [channel]
    await ws.send(json.dumps({"type": "signal", "channel_id": channel, "ref": "go", **SIGNAL}))
    accepted = json.loads(await ws.recv())
    assert accepted["type"] == "accepted", accepted
    signal_id = accepted["signal_id"]

    progress: list[dict[str, Any]] = []
    deadline = time.monotonic() + 90
    while not (progress and progress[-1]["done"]):
        assert time.monotonic() < deadline, progress[-1:] or "no progress"
        message = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if message["type"] == "progress":
            progress.append(message)
    await ws.close()
    final = progress[-1]
    assert final["counts"] == {
        "total": 1000,
        "placed": 1000,
        "rejected": 0,
        "expired": 0,
        "failed": 0,
        "unknown": 0,
    }, (final, pipeline.log("worker")[-3000:])
    assert len(progress) >= 2  # it moved while the fan-out ran, not only at the end
    # Every subscriber trades on Deriv: the per-broker counts are the totals.
    assert final["brokers"] == {"deriv": {k: v for k, v in final["counts"].items() if k != "total"}}
    assert final["latency_ms"]["last_placed"] is not None

    # The broker's own books: one contract per order, none twice, none missing.
    per_order = contracts_by_order(await sim.ledger(), signal_id)
    assert len(per_order) == 1000 and set(per_order.values()) == {1}
    # A person's stake followed their risk settings: 2 x the signal's 1, capped at 5.
    stakes = {c["stake"] for c in await sim.ledger() if c["loginid"]}
    assert any(float(s) == 2.0 for s in stakes)

    # The ledger's MongoDB books and the API agree; the subscriber sees the trade.
    stats = await signal_stats(http, provider, signal_id)
    assert stats["counts"]["placed"] == 1000

    # Per-order documents follow the counts (the ledger's MongoDB writes come after Redis).
    async def my_order() -> bool:
        mine = await http.ok("GET", "/api/v1/orders", people[0])
        return [(o["signal_id"], o["state"]) for o in mine] == [(signal_id, "placed")]

    await wait_for(my_order, timeout=60, what="the subscriber's order document")

    # Contracts settle (the simulator runs 30x fast): outcomes reach the books.
    async def all_settled() -> bool:
        s = await signal_stats(http, provider, signal_id)
        return bool(s["won"] + s["lost"] == 1000)

    await wait_for(all_settled, timeout=60, what="every contract to settle")

    # The per-order documents follow the counts (bulk upserts after the Redis books).
    async def my_outcome() -> bool:
        mine = await http.ok("GET", "/api/v1/orders", people[0])
        return mine[0]["outcome"] in {"won", "lost"} and mine[0]["profit"] is not None

    await wait_for(my_outcome, timeout=60, what="the subscriber's trade to show its outcome")

    # The public listing shows the channel's performance from the ledger: one signal, won
    # or lost once by its own outcome, whatever its 1000 orders did.
    async def signal_settled() -> dict[str, Any] | None:
        performance = (await http.ok("GET", f"/api/v1/channels/{channel}"))["performance"]
        return performance if performance["wins"] + performance["losses"] == 1 else None

    performance = await wait_for(
        signal_settled, what="the signal's outcome in the channel's record"
    )
    assert performance["signals"] == 1 and performance["orders_placed"] == 1000
    assert Decimal(str(performance["win_rate"])) == performance["wins"]


async def test_killed_router_and_worker_still_place_every_order_exactly_once(
    api_server: ApiServer,
    http: Api,
    pipeline: Pipeline,
    sim: SimHandle,
    settings: Settings,
    nc: NATS,
) -> None:
    provider = await http.user("provider", "provider")
    channel = await http.channel(provider)
    # One subscription per broker account, as the API enforces for a channel.
    seeded = await seed_subscribers(pipeline.settings, sim, channel, count=300, accounts=300)
    login_of = {s.subscription_id: s.loginid for s in seeded}
    await sim.faults(latency_ms=150)
    await pipeline.start("ledger")
    await pipeline.start("router", ORDER_GROUP_SIZE="1")
    await pipeline.start("worker-a", "worker")
    await pipeline.ready(nc)
    js = nc.jetstream()
    orders_stream = Topology(settings.namespace).stream("ORDERS")

    sent = await http.ok(
        "POST", f"/api/v1/channels/{channel}/signals", provider, json={**SIGNAL, "stake": "2"}
    )
    signal_id = sent["signal_id"]

    async def fan_out_started() -> bool:
        info = await js.stream_info(orders_stream)
        return info.state.messages > 0 or len(await sim.ledger()) > 0

    await wait_for(fan_out_started, timeout=60, what="the fan-out to start")
    pipeline.kill("router")

    async def some_placed() -> bool:
        return len(contracts_by_order(await sim.ledger(), signal_id)) > 20

    await pipeline.start("router-2", "router", ORDER_GROUP_SIZE="1")
    await wait_for(some_placed, timeout=60, what="placements to begin")
    pipeline.kill("worker-a")
    await sim.faults(latency_ms=0)
    await pipeline.start("worker-b", "worker")

    async def finished() -> bool:
        s = await signal_stats(http, provider, signal_id)
        return bool(s["done"])

    await wait_for(finished, timeout=120, what="every order to reach a final state")
    stats = await signal_stats(http, provider, signal_id)
    counts = stats["counts"]
    assert counts["total"] == 300
    assert sum(counts[s] for s in ("placed", "rejected", "expired", "failed", "unknown")) == 300
    assert counts["failed"] == counts["unknown"] == 0, await _explain(settings, signal_id, counts)
    per_order = contracts_by_order(await sim.ledger(), signal_id)
    assert set(per_order.values()) <= {1}, "an order was bought twice"

    # Every account holds exactly the contracts the books say were placed for it. The
    # ledger writes MongoDB once the burst of executions is over, after the Redis counts.
    async def documents_written() -> bool:
        return len(await _orders(settings, signal_id, "placed")) == counts["placed"]

    await wait_for(documents_written, timeout=60, what="the placed orders' documents in MongoDB")
    placed_by_login = Counter(
        login_of[o["subscription_id"]] for o in await _orders(settings, signal_id, "placed")
    )
    contracts_by_login = Counter(
        c["loginid"]
        for c in await sim.ledger()
        if (c.get("passthrough") or {}).get("signal_id") == signal_id
    )
    assert contracts_by_login == placed_by_login, await _explain(settings, signal_id, counts)
    assert counts["placed"] == sum(contracts_by_login.values()) == len(per_order)


async def _orders(settings: Settings, signal_id: str, state: str) -> list[dict[str, Any]]:
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    cursor = mongo[settings.mongodb_database]["orders"].find(
        {"signal_id": signal_id, "state": state}
    )
    found = [doc async for doc in cursor]
    mongo.close()
    return found


async def _explain(settings: Settings, signal_id: str, counts: Any) -> str:
    reasons: Counter[str] = Counter()
    for state in ("unknown", "failed"):
        for doc in await _orders(settings, signal_id, state):
            reasons[f"{state}: {doc.get('reason')}"] += 1
    return f"counts={counts} reasons={dict(reasons)}"
