"""PUT /api/v1/broker-accounts/{id}/credentials and the API's rules for an account that
needs re-linking, against a Deriv peer: refusals in plain words, no change before the
broker accepts, only the re-linking pauses lifted, routing and worker records rewritten."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from apps.api.models import BrokerAccount, Subscription
from apps.core.credentials import unpack_account_record
from apps.core.routing import unpack_record
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import Api, User
from tests.integration.accounts.conftest import Stores

REASON = "InvalidToken: The token is invalid."
PAUSE = f"broker account needs re-linking: {REASON}"


async def refused_by_the_broker(stores: Stores, account_id: str) -> None:
    """What the ledger does when a worker reports the account's credentials refused."""
    account = await stores.db.find_one(BrokerAccount, BrokerAccount.id == account_id)
    assert account is not None
    account.status = "needs_relink"
    account.relink_reason = REASON
    await stores.db.save(account)
    for sub in await stores.db.find(Subscription, Subscription.broker_account_id == account_id):
        if not sub.paused:
            sub.paused, sub.paused_reason = True, PAUSE
            await stores.db.save(sub)


async def routed(stores: Stores, channel_id: str, subscription_id: str) -> tuple[bool, str]:
    raw = await stores.redis.hget(stores.topology.routing_key(channel_id), subscription_id)
    assert raw is not None
    record = unpack_record(raw)
    return record.paused, record.paused_reason


async def setup(api: Api, broker: BrokerAccount) -> tuple[User, str, str, str, str, str]:
    provider = await api.user("provider", "p")
    channel, other = await api.channel(provider), await api.channel(provider, name="Beta")
    subscriber = await api.user("subscriber", "s")
    account_id = await api.broker_account(subscriber, token=broker.token)
    copying = await api.subscribe(subscriber, channel, account_id)
    held = await api.subscribe(subscriber, other, account_id, paused=True)
    return subscriber, account_id, channel, other, copying, held


async def test_relinking_resumes_only_what_the_refusal_paused(
    api: Api, stores: Stores, deriv_sim: SimHandle
) -> None:
    old = await deriv_sim.account(balance="10")
    subscriber, account_id, channel, other, copying, held = await setup(api, old)
    await refused_by_the_broker(stores, account_id)
    new = await deriv_sim.revoke(old)  # revoked at the broker, which issues a new token
    path = f"/api/v1/broker-accounts/{account_id}/credentials"

    refused = await api.call("PUT", path, subscriber, json={"credentials": {"token": old.token}})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["message"] == "The token is invalid."
    shapeless = await api.call(
        "PUT", path, subscriber, json={"credentials": {"login": "a@b.c", "password": "pw"}}
    )
    assert shapeless.status_code == 400, shapeless.text
    listed = await api.ok("GET", "/api/v1/broker-accounts", subscriber)
    assert listed[0]["status"] == "needs_relink" and listed[0]["relink_reason"] == REASON

    body: dict[str, Any] = await api.ok(
        "PUT", path, subscriber, json={"credentials": {"token": new.token}}
    )
    assert body["status"] == "active" and body["relink_reason"] == ""
    assert body["loginid"] == old.login and Decimal(body["balance"]) == 10
    subs = {s["id"]: s for s in await api.ok("GET", "/api/v1/subscriptions", subscriber)}
    assert (subs[copying]["paused"], subs[copying]["paused_reason"]) == (False, "")
    assert (subs[held]["paused"], subs[held]["paused_reason"]) == (True, "")
    assert await routed(stores, channel, copying) == (False, "")
    assert await routed(stores, other, held) == (True, "")
    record = await stores.redis.get(stores.topology.broker_account_key(account_id))
    assert record is not None
    assert unpack_account_record(record).ciphertext != b""  # re-sealed, never in the clear
    assert new.token.encode() not in record


async def test_a_paused_subscription_cannot_resume_or_start_on_a_refused_account(
    api: Api, stores: Stores, deriv_sim: SimHandle
) -> None:
    subscriber, account_id, _, _, copying, _ = await setup(api, await deriv_sim.account())
    await refused_by_the_broker(stores, account_id)
    provider = await api.user("provider", "p2")
    third = await api.channel(provider, name="Gamma")

    resume = await api.call(
        "PATCH", f"/api/v1/subscriptions/{copying}", subscriber, json={"paused": False}
    )
    new = await api.call(
        "POST",
        f"/api/v1/channels/{third}/subscriptions",
        subscriber,
        json={
            "broker_account_id": account_id,
            "stake_mode": "fixed",
            "stake": "5",
            "max_stake": "20",
        },
    )

    for answer in (resume, new):
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"]["code"] == "broker_account_needs_relink"
        assert PAUSE in answer.json()["error"]["message"]


async def test_credentials_of_another_broker_login_are_refused(
    api: Api, stores: Stores, deriv_sim: SimHandle
) -> None:
    subscriber, account_id, *_ = await setup(api, await deriv_sim.account())
    other = await deriv_sim.account(balance="1")
    path = f"/api/v1/broker-accounts/{account_id}/credentials"
    answer = await api.call("PUT", path, subscriber, json={"credentials": {"token": other.token}})
    assert answer.status_code == 409, answer.text
    assert other.login in answer.json()["error"]["message"]


async def test_a_recheck_the_broker_accepts_makes_the_account_active_again(
    api: Api, stores: Stores, deriv_sim: SimHandle
) -> None:
    subscriber, account_id, channel, _, copying, _ = await setup(api, await deriv_sim.account())
    await refused_by_the_broker(stores, account_id)
    verified = await api.ok("POST", f"/api/v1/broker-accounts/{account_id}/verify", subscriber)
    assert verified["status"] == "active"
    assert await routed(stores, channel, copying) == (False, "")
