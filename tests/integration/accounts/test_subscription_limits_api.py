"""The subscribers' limits through the API: stored, shown, routed, validated in plain
words; a drawdown pause is lifted only by its subscriber, and the drawdown restarts."""

from __future__ import annotations

from decimal import Decimal

from apps.api.models import Subscription
from apps.core.exposure import peak_field
from apps.core.routing import unpack_record
from tests.fixtures.live_api import Api
from tests.integration.accounts.conftest import Stores

LIMITS = {
    "daily_loss_limit": "30",
    "balance_floor": "500",
    "max_drawdown_percent": "25",
    "round_up_to_min_stake": True,
    "directions": ["PUT"],
    "reverse": True,
}


async def test_limits_are_stored_shown_and_routed(api: Api, stores: Stores) -> None:
    provider, subscriber = await api.user("provider", "p"), await api.user("subscriber", "s")
    channel = await api.channel(provider)
    account = await api.broker_account(subscriber)
    subscription_id = await api.subscribe(subscriber, channel, account, **LIMITS)
    [view] = [s for s in await api.ok("GET", "/api/v1/subscriptions", subscriber)]
    assert view["id"] == subscription_id
    assert {k: view[k] for k in LIMITS} == {
        "daily_loss_limit": "30",
        "balance_floor": "500",
        "max_drawdown_percent": "25",
        "round_up_to_min_stake": True,
        "directions": ["PUT"],
        "reverse": True,
    }
    raw = await stores.redis.hget(stores.topology.routing_key(channel), subscription_id)
    assert raw is not None
    record = unpack_record(raw)
    assert (record.balance_floor, record.max_drawdown_percent) == (Decimal(500), Decimal(25))
    assert (record.round_up_to_min_stake, record.directions, record.reverse) == (
        True,
        ("PUT",),
        True,
    )

    # Cleared one by one; an older subscription without them routes as before.
    patched = await api.ok(
        "PATCH",
        f"/api/v1/subscriptions/{subscription_id}",
        subscriber,
        json={"balance_floor": None, "directions": [], "reverse": False},
    )
    assert (patched["balance_floor"], patched["directions"], patched["reverse"]) == (
        None,
        [],
        False,
    )
    record = unpack_record(
        await stores.redis.hget(stores.topology.routing_key(channel), subscription_id)  # type: ignore[arg-type]
    )
    assert (record.balance_floor, record.directions, record.reverse) == (None, (), False)


async def test_bad_limits_are_refused_in_plain_words(api: Api) -> None:
    provider, subscriber = await api.user("provider", "p"), await api.user("subscriber", "s")
    channel = await api.channel(provider)
    account = await api.broker_account(subscriber)
    body = {"broker_account_id": account, "stake_mode": "fixed", "stake": "5", "max_stake": "20"}
    path = f"/api/v1/channels/{channel}/subscriptions"
    for extra, words in [
        ({"max_drawdown_percent": "150"}, "max drawdown must be between 0 and 100 %"),
        ({"max_drawdown_percent": "0"}, "max drawdown must be between 0 and 100 %"),
        ({"directions": ["CALL", "CALL"]}, "directions must not repeat a direction"),
    ]:
        response = await api.client.post(path, json={**body, **extra}, headers=subscriber.headers)
        assert response.status_code == 400, response.text
        assert words.lower() in response.json()["error"]["message"].lower()
    subscription_id = await api.subscribe(subscriber, channel, account)
    response = await api.client.patch(
        f"/api/v1/subscriptions/{subscription_id}",
        json={"max_drawdown_percent": "100.5"},
        headers=subscriber.headers,
    )
    assert response.status_code == 400
    assert "max drawdown must be between 0 and 100 %" in response.text.lower()


async def test_resuming_a_drawdown_pause_is_the_subscribers_act(api: Api, stores: Stores) -> None:
    provider, subscriber = await api.user("provider", "p"), await api.user("subscriber", "s")
    channel = await api.channel(provider)
    account = await api.broker_account(subscriber)
    subscription_id = await api.subscribe(subscriber, channel, account, max_drawdown_percent="20")
    balances = stores.topology.balances_key()
    await stores.redis.hset(balances, mapping={account: "700.00", peak_field(account): "1000.00"})
    # The ledger paused it (apps.ledger.pauses), as it does when the drawdown is reached.
    subscription = await stores.db.find_one(Subscription, Subscription.id == subscription_id)
    assert subscription is not None
    subscription.paused = True
    subscription.paused_reason = "maximum drawdown reached: balance 700.00 is 30.0 % below"
    await stores.db.save(subscription)
    [view] = await api.ok("GET", "/api/v1/subscriptions", subscriber)
    assert (view["status"], view["paused_reason"][:24]) == ("paused", "maximum drawdown reached")

    resumed = await api.ok(
        "PATCH", f"/api/v1/subscriptions/{subscription_id}", subscriber, json={"paused": False}
    )
    assert (resumed["paused"], resumed["paused_reason"]) == (False, "")
    # Measured anew from the balance it resumed at.
    assert await stores.redis.hget(balances, peak_field(account)) == b"700.00"
    record = unpack_record(
        await stores.redis.hget(stores.topology.routing_key(channel), subscription_id)  # type: ignore[arg-type]
    )
    assert not record.paused
