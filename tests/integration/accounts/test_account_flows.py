"""The happy paths a provider and a subscriber walk through, end to end over HTTP."""

from __future__ import annotations

from typing import Any

from apps.core.routing import unpack_record
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import Api
from tests.integration.accounts.conftest import Stores


async def test_provider_and_subscriber_set_up_copying(
    api: Api, deriv_sim: SimHandle, stores: Stores
) -> None:
    broker = await deriv_sim.account(balance="1234.56", currency="EUR")
    provider = await api.user("provider", "prov")
    subscriber = await api.user("subscriber", "sub")
    channel_id = await api.channel(provider)
    account_id = await api.broker_account(subscriber, token=broker.token, currency="EUR")

    verified = await api.client.post(
        f"/api/v1/broker-accounts/{account_id}/verify", headers=subscriber.headers
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["currency"] == "EUR"
    assert verified.json()["balance"] == "1234.56"
    assert verified.json()["loginid"] == broker.login
    # Read back from MongoDB (bson Decimal128), the balance still lists.
    accounts = await api.client.get("/api/v1/broker-accounts", headers=subscriber.headers)
    assert accounts.status_code == 200, accounts.text
    assert [a["balance"] for a in accounts.json()] == ["1234.56"]

    sub_id = await api.subscribe(
        subscriber, channel_id, account_id, assets=["R_100"], daily_loss_limit="50"
    )
    mine = await api.client.get("/api/v1/subscriptions", headers=subscriber.headers)
    assert mine.status_code == 200, mine.text
    assert [s["daily_loss_limit"] for s in mine.json()] == ["50"]
    listing = (await api.client.get("/api/v1/channels")).json()["items"]
    assert [c["subscriber_count"] for c in listing if c["id"] == channel_id] == [1]
    assert listing[0]["provider"]["display_name"] == "Prov"
    assert listing[0]["plan"] == {"price": "9.99", "currency": "USD", "period_days": 30}

    raw = await stores.redis.hget(stores.topology.routing_key(channel_id), sub_id)
    assert raw is not None
    record = unpack_record(raw)
    assert record.currency == "EUR"
    assert record.subscriber_id == subscriber.id
    assert record.assets == ("R_100",)

    subscribers = await api.client.get(
        f"/api/v1/channels/{channel_id}/subscribers", headers=provider.headers
    )
    assert subscribers.status_code == 200
    rows: list[dict[str, Any]] = subscribers.json()
    assert [(r["user"]["id"], r["status"]) for r in rows] == [(subscriber.id, "active")]
