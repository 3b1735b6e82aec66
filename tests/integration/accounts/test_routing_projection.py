"""The Redis routing projection kept request by request equals a rebuild from MongoDB."""

from __future__ import annotations

import random

from apps.api.subscriptions.projection import rebuild_all
from apps.core.routing import unpack_record
from tests.fixtures.live_api import Api
from tests.integration.accounts.conftest import Stores


async def _snapshot(stores: Stores) -> dict[str, object]:
    """Everything the signal path reads: routing hashes, worker account records, balances."""
    prefix = stores.topology.routing_key("")
    keys = [k.decode() async for k in stores.redis.scan_iter(match=f"{prefix}*")]
    state: dict[str, object] = {key: await stores.redis.hgetall(key) for key in sorted(keys)}
    accounts = stores.topology.broker_account_key("")
    for key in sorted([k.decode() async for k in stores.redis.scan_iter(match=f"{accounts}*")]):
        state[key] = await stores.redis.get(key)
    state["balances"] = await stores.redis.hgetall(stores.topology.balances_key())
    return state


async def test_incremental_projection_matches_a_fresh_rebuild(api: Api, stores: Stores) -> None:
    rng = random.Random(20250601)
    providers = [await api.user("provider", "p") for _ in range(2)]
    subscribers = [await api.user("subscriber", "s") for _ in range(2)]
    channels = [await api.channel(p) for p in providers for _ in range(2)]
    accounts = {
        s.id: [await api.broker_account(s, currency="EUR") for _ in range(2)] for s in subscribers
    }
    live: dict[str, str] = {}  # subscription id → subscriber id

    for _ in range(45):
        subscriber = rng.choice(subscribers)
        action = rng.choice(["subscribe", "subscribe", "patch", "cancel", "verify", "drop"])
        if action == "subscribe" and accounts[subscriber.id]:
            response = await api.client.post(
                f"/api/v1/channels/{rng.choice(channels)}/subscriptions",
                json={
                    "broker_account_id": rng.choice(accounts[subscriber.id]),
                    "stake_mode": rng.choice(["fixed", "multiplier", "percent"]),
                    "stake": str(rng.randint(1, 10)),
                    "max_stake": str(rng.randint(10, 50)),
                    "assets": rng.sample(["R_100", "R_50", "frxEURUSD"], rng.randint(0, 2)),
                },
                headers=subscriber.headers,
            )
            assert response.status_code in (201, 409), response.text
            if response.status_code == 201:
                live[response.json()["id"]] = subscriber.id
        mine = [sid for sid, owner in live.items() if owner == subscriber.id]
        if action == "patch" and mine:
            response = await api.client.patch(
                f"/api/v1/subscriptions/{rng.choice(mine)}",
                json={"paused": rng.random() < 0.5, "max_trades_per_day": rng.randint(1, 9)},
                headers=subscriber.headers,
            )
            assert response.status_code == 200, response.text
        if action == "cancel" and mine:
            sid = rng.choice(mine)
            response = await api.client.delete(
                f"/api/v1/subscriptions/{sid}", headers=subscriber.headers
            )
            assert response.status_code == 204
            del live[sid]
        if action == "verify" and accounts[subscriber.id]:
            response = await api.client.post(
                f"/api/v1/broker-accounts/{rng.choice(accounts[subscriber.id])}/verify",
                headers=subscriber.headers,
            )
            assert response.status_code == 200
        if action == "drop" and rng.random() < 0.3 and accounts[subscriber.id]:
            account_id = accounts[subscriber.id].pop()
            response = await api.client.delete(
                f"/api/v1/broker-accounts/{account_id}", headers=subscriber.headers
            )
            assert response.status_code == 204

    # A channel deleted by its owner takes its routing hash with it.
    deleted = channels[0]
    response = await api.client.delete(f"/api/v1/channels/{deleted}", headers=providers[0].headers)
    assert response.status_code == 204

    incremental = await _snapshot(stores)
    assert stores.topology.routing_key(deleted) not in incremental
    records = [
        unpack_record(raw)
        for key, fields in incremental.items()
        if key.startswith(stores.topology.routing_key(""))
        for raw in fields.values()  # type: ignore[attr-defined]
    ]
    assert records, "the random walk should leave some active subscriptions"
    assert {r.currency for r in records} <= {"USD", "EUR"}

    report = await rebuild_all(stores.db, stores.redis, stores.topology)
    assert report.subscriptions == len(records)
    assert await _snapshot(stores) == incremental

    # And a projection lost entirely (Redis flushed) comes back identical.
    for key in incremental:
        await stores.redis.delete(key)
    await rebuild_all(stores.db, stores.redis, stores.topology)
    assert await _snapshot(stores) == incremental
