"""Paid subscriptions end to end over real HTTP: the live API, the Stripe stand-in and its
signed webhooks, the Deriv simulator for the broker account. Time-driven transitions (the
grace period's end) run through the API's sweep at a time the test chooses, never sleeps."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
from odmantic import AIOEngine
from redis.asyncio import Redis

from apps.api.payments.service import sweep
from apps.core.embedded import free_port
from apps.core.routing import RoutingRecord, unpack_record
from apps.core.topology import Topology
from apps.payments.signature import sign_header
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import Api, ApiServer, User
from tests.fixtures.stripe_sim import WEBHOOK_SECRET, StripeSimHandle
from tests.fixtures.waiting import wait_for

DAY = 86_400
RISK = {"stake_mode": "fixed", "stake": "5", "max_stake": "20"}
Stores = tuple[AIOEngine, Redis, Topology]


@dataclass
class Paid:
    provider: User
    subscriber: User
    channel_id: str
    subscription_id: str
    stripe_subscription_id: str


async def subscription(http: Api, user: User, subscription_id: str) -> dict[str, Any]:
    rows = await http.ok("GET", "/api/v1/subscriptions", user)
    return next(s for s in rows if s["id"] == subscription_id)


async def routing(stores: Stores, channel_id: str, subscription_id: str) -> RoutingRecord | None:
    _, redis, topology = stores
    raw = await redis.hget(topology.routing_key(channel_id), subscription_id)
    return None if raw is None else unpack_record(raw)


def ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


async def pay_through_checkout(http: Api, sim: SimHandle, stripe: StripeSimHandle) -> Paid:
    provider = await http.user("provider", "prov")
    channel_id = await http.channel(provider, price="9.99", days=30)
    subscriber = await http.user("subscriber", "sub")
    account = await sim.account()
    account_id = await http.broker_account(subscriber, token=account.token)
    body = {"broker_account_id": account_id, **RISK}

    direct = await http.call(
        "POST", f"/api/v1/channels/{channel_id}/subscriptions", subscriber, json=body
    )
    assert direct.status_code == 402, direct.text
    assert "checkout" in direct.json()["error"]["message"]

    answer = await http.ok("POST", f"/api/v1/channels/{channel_id}/checkout", subscriber, json=body)
    url = answer["checkout_url"]
    assert url.startswith(stripe.url)
    pending = (await http.ok("GET", "/api/v1/subscriptions", subscriber))[0]
    assert pending["status"] == "pending_payment"

    async with httpx.AsyncClient(timeout=10) as browser:
        page = await browser.get(url)
        assert page.status_code == 200 and "Pay" in page.text and "9.99 USD" in page.text
        paid = await browser.post(url, data={"action": "pay"}, follow_redirects=False)
    assert paid.status_code == 303
    assert "/subscriptions?checkout=success&session_id=cs_test_" in paid.headers["location"]

    async def active() -> dict[str, Any] | None:
        row = await subscription(http, subscriber, pending["id"])
        return row if row["status"] == "active" else None

    row = await wait_for(active, what="the checkout's webhooks to activate the subscription")
    assert row["payment_status"] == "active"
    assert abs(ts(row["expires_at"]) - (time.time() + 30 * DAY)) < 3600
    await wait_for(stripe.all_delivered, what="the checkout's webhooks")
    (stripe_sub,) = await stripe.subscriptions()
    return Paid(provider, subscriber, channel_id, pending["id"], stripe_sub["id"])


async def test_checkout_renewal_failed_payment_grace_pause_and_resume(
    http: Api, sim: SimHandle, stripe: StripeSimHandle, stores: Stores
) -> None:
    paid = await pay_through_checkout(http, sim, stripe)
    record = await routing(stores, paid.channel_id, paid.subscription_id)
    assert record is not None and not record.paused
    first = await subscription(http, paid.subscriber, paid.subscription_id)

    receipts = await http.ok("GET", "/api/v1/me/receipts", paid.subscriber)
    assert [(r["amount"], r["currency"]) for r in receipts] == [("9.99", "USD")]
    assert receipts[0]["url"].startswith(stripe.url)
    async with httpx.AsyncClient(timeout=10) as browser:
        assert (await browser.get(receipts[0]["url"])).status_code == 200

    # Renewal: the next period is paid, expires_at moves by the plan's period.
    await stripe.advance(paid.stripe_subscription_id)

    async def renewed() -> dict[str, Any] | None:
        row = await subscription(http, paid.subscriber, paid.subscription_id)
        return row if ts(row["expires_at"]) > ts(first["expires_at"]) else None

    row = await wait_for(renewed, what="the renewal to extend the subscription")
    await wait_for(stripe.all_delivered, what="the renewal's webhooks")
    assert abs(ts(row["expires_at"]) - ts(first["expires_at"]) - 30 * DAY) < 1
    assert len(await http.ok("GET", "/api/v1/me/receipts", paid.subscriber)) == 2

    # The next payment fails: past due, still copying during the grace period.
    await stripe.fail_payments(paid.stripe_subscription_id, True, "Your card was declined.")
    await stripe.advance(paid.stripe_subscription_id)

    async def past_due() -> dict[str, Any] | None:
        row = await subscription(http, paid.subscriber, paid.subscription_id)
        return row if row["status"] == "past_due" else None

    row = await wait_for(past_due, what="the failed payment to make it past due")
    grace_until = ts(row["grace_until"])
    assert abs(grace_until - (time.time() + 0.5 * DAY)) < 3600
    record = await routing(stores, paid.channel_id, paid.subscription_id)
    assert record is not None and not record.paused

    # The grace period ends unpaid: paused with the reason, in the router's record too.
    db, redis, topology = stores
    assert await sweep(db, redis, topology, grace_until - 1) == 0
    assert await sweep(db, redis, topology, grace_until + 1) == 1
    row = await subscription(http, paid.subscriber, paid.subscription_id)
    assert row["status"] == "paused"
    assert row["paused_reason"] == "payment failed: Your card was declined."
    record = await routing(stores, paid.channel_id, paid.subscription_id)
    assert record is not None and record.paused
    assert record.paused_reason == "payment failed: Your card was declined."

    # Paid again (the open invoice is retried and succeeds): resumed.
    await stripe.fail_payments(paid.stripe_subscription_id, False)
    await stripe.advance(paid.stripe_subscription_id)

    async def resumed() -> dict[str, Any] | None:
        row = await subscription(http, paid.subscriber, paid.subscription_id)
        return row if row["status"] == "active" else None

    row = await wait_for(resumed, what="the retried payment to resume the subscription")
    await wait_for(stripe.all_delivered, what="the retried payment's webhooks")
    assert row["paused_reason"] == "" and row["grace_until"] is None
    record = await routing(stores, paid.channel_id, paid.subscription_id)
    assert record is not None and not record.paused and record.paused_reason == ""

    revenue = await http.ok("GET", "/api/v1/me/revenue", paid.provider)
    (channel,) = revenue["channels"]
    assert channel["channel_id"] == paid.channel_id
    assert Decimal(channel["total"]) == Decimal("29.97")
    assert sum(p["invoices"] for p in channel["periods"]) == 3
    assert channel["subscribers"] == {"active": 1, "past_due": 0, "paused": 0, "expired": 0}
    refused = await http.call("GET", "/api/v1/me/revenue", paid.subscriber)
    assert refused.status_code == 403


async def test_cancel_at_period_end(
    http: Api, sim: SimHandle, stripe: StripeSimHandle, stores: Stores
) -> None:
    paid = await pay_through_checkout(http, sim, stripe)
    row = await http.ok(
        "POST", f"/api/v1/subscriptions/{paid.subscription_id}/cancel", paid.subscriber
    )
    assert row["cancel_at_period_end"] and row["status"] == "active"
    (stripe_sub,) = await stripe.subscriptions()
    assert stripe_sub["cancel_at_period_end"] is True
    await wait_for(stripe.all_delivered, what="the update's webhook")
    record = await routing(stores, paid.channel_id, paid.subscription_id)
    assert record is not None and not record.paused  # copies until the period's end

    # The period ends: Stripe ends the subscription instead of billing it.
    await stripe.advance(paid.stripe_subscription_id)

    async def ended() -> dict[str, Any] | None:
        row = await subscription(http, paid.subscriber, paid.subscription_id)
        return row if row["status"] == "expired" else None

    row = await wait_for(ended, what="the subscription to end")
    assert row["payment_status"] == "ended"
    assert await routing(stores, paid.channel_id, paid.subscription_id) is None
    assert len(await http.ok("GET", "/api/v1/me/receipts", paid.subscriber)) == 1


async def test_a_forged_webhook_is_refused_and_a_replayed_one_changes_nothing(
    http: Api, sim: SimHandle, stripe: StripeSimHandle, stores: Stores
) -> None:
    paid = await pay_through_checkout(http, sim, stripe)
    before = await subscription(http, paid.subscriber, paid.subscription_id)
    events = await stripe.events()
    invoice_paid = next(e["event"] for e in events if e["type"] == "invoice.paid")
    # A forged renewal a year on, signed with the wrong secret, or unsigned, or stale.
    forged = json.loads(json.dumps(invoice_paid))
    forged["id"] = "evt_forged"
    forged["data"]["object"]["id"] = "in_forged"
    forged["data"]["object"]["lines"]["data"][0]["period"]["end"] += 365 * DAY
    payload = json.dumps(forged).encode()
    now = int(time.time())
    for header in (
        sign_header(payload, "whsec_not_the_secret", now),
        "",
        sign_header(payload, WEBHOOK_SECRET, now - 301),
    ):
        answer = await http.call(
            "POST",
            "/api/v1/payments/stripe/webhook",
            content=payload,
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        )
        assert answer.status_code == 400, answer.text
        assert "signature" in answer.json()["error"]["message"]
    assert await subscription(http, paid.subscriber, paid.subscription_id) == before

    # The genuine event delivered again: acknowledged, acted on never twice.
    payload = json.dumps(invoice_paid).encode()
    for _ in range(2):
        answer = await http.ok(
            "POST",
            "/api/v1/payments/stripe/webhook",
            content=payload,
            headers={
                "Stripe-Signature": sign_header(payload, WEBHOOK_SECRET, int(time.time())),
                "Content-Type": "application/json",
            },
        )
        assert answer == {"received": True, "applied": False}
    assert await subscription(http, paid.subscriber, paid.subscription_id) == before
    assert len(await http.ok("GET", "/api/v1/me/receipts", paid.subscriber)) == 1


async def test_free_plans_subscribe_directly_and_have_no_checkout(
    http: Api, sim: SimHandle, stripe: StripeSimHandle
) -> None:
    provider = await http.user("provider", "prov")
    channel_id = await http.channel(provider, price="0", days=30)
    subscriber = await http.user("subscriber", "sub")
    account = await sim.account()
    account_id = await http.broker_account(subscriber, token=account.token)
    body = {"broker_account_id": account_id, **RISK}
    refused = await http.call(
        "POST", f"/api/v1/channels/{channel_id}/checkout", subscriber, json=body
    )
    assert refused.status_code == 409 and "free" in refused.json()["error"]["message"]
    subscription_id = await http.subscribe(subscriber, channel_id, account_id)
    row = await subscription(http, subscriber, subscription_id)
    assert row["status"] == "active" and row["payment_status"] == ""


async def test_webhooks_wait_for_an_endpoint_and_are_retried_until_answered(
    http: Api, sim: SimHandle, stripe_sim: StripeSimHandle, api_server: ApiServer
) -> None:
    closed = free_port()  # nothing listens here: every attempt fails
    await stripe_sim.admin.put("/admin/webhook", json={"url": f"http://127.0.0.1:{closed}/hook"})
    provider = await http.user("provider", "prov")
    channel_id = await http.channel(provider, price="5", days=7)
    subscriber = await http.user("subscriber", "sub")
    account_id = await http.broker_account(subscriber, token=(await sim.account()).token)
    body = {"broker_account_id": account_id, **RISK}
    url = (await http.ok("POST", f"/api/v1/channels/{channel_id}/checkout", subscriber, json=body))[
        "checkout_url"
    ]
    async with httpx.AsyncClient(timeout=10) as browser:
        await browser.post(url, data={"action": "pay"}, follow_redirects=False)

    async def attempted() -> bool:
        return any(e["attempts"] >= 2 for e in await stripe_sim.events())

    await wait_for(attempted, what="the stand-in to retry the undelivered event")
    (pending,) = await http.ok("GET", "/api/v1/subscriptions", subscriber)
    assert pending["status"] == "pending_payment"

    await stripe_sim.point_webhooks_at(api_server.url)
    await wait_for(stripe_sim.all_delivered, what="the retried deliveries")
    row = await subscription(http, subscriber, pending["id"])
    assert row["status"] == "active"
    assert all(e["statuses"][-1] == 200 for e in await stripe_sim.events())
