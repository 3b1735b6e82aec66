"""A paid subscription in a real browser: the live API serving frontend/dist with payments
on, the Stripe stand-in's hosted checkout page and signed webhooks, the Deriv simulator
for the broker account.

A provider creates a priced channel; a subscriber links an account, subscribes, is sent
to the checkout page, cancels (back on the channel, nothing charged), subscribes again
and pays: back on the subscriptions, the subscription turns active and its receipt shows.
The provider's revenue card counts the payment and the subscriber. The next payment
fails and the grace period ends (the API's sweep at a time the test chooses): the
subscription shows the pause and its reason; paid again, it is active. The subscriber
cancels at period end. Screenshots go to test-artifacts/screenshots/<test>/.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from apps.api.payments.service import sweep
from apps.core.db import connect_db
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.dashboard import WAIT_MS, Person, sign_up
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import ApiServer
from tests.fixtures.stripe_sim import StripeSimHandle, paid_settings, stripe_sim
from tests.fixtures.waiting import wait_for

__all__ = ["stripe_sim"]

pytestmark = pytest.mark.e2e

DAY = 86_400


@pytest.fixture
def api_settings(
    pipeline_settings: Settings, dashboard_port: int, stripe_sim: StripeSimHandle
) -> Settings:
    origin = f"http://127.0.0.1:{dashboard_port}"
    return paid_settings(
        replace(pipeline_settings, cors_origins=origin),
        stripe_sim,
        public_url=origin,
        payment_sweep_seconds=3600.0,
    )


@pytest.fixture
async def swept(api_settings: Settings) -> AsyncIterator[object]:
    """Runs the API's payment sweep at a time the test names."""
    mongo, db = connect_db(api_settings.mongodb_uri, api_settings.mongodb_database)
    redis = connect_redis(api_settings.redis_url)
    topology = Topology(api_settings.namespace)

    async def at(now: float) -> int:
        return await sweep(db, redis, topology, now)

    try:
        yield at
    finally:
        await redis.aclose()
        mongo.close()


async def test_paid_subscription_journey(
    api_server: ApiServer,
    sim: SimHandle,
    stripe_sim: StripeSimHandle,
    swept: object,
    browser: Browser,
    shots: Path,
) -> None:
    base = api_server.url
    await stripe_sim.point_webhooks_at(base)
    people: list[Person] = []
    try:
        provider = await sign_up(browser, base, "provider", "Priya")
        people.append(provider)
        await provider.page.get_by_test_id("new-channel").click()
        await provider.page.get_by_label("Name").fill("Priya's Premium Calls")
        await provider.page.get_by_label("Price").fill("9.99")
        await provider.page.get_by_label("Period (days)").fill("30")
        await provider.page.get_by_test_id("channel-submit").click()
        await expect(provider.page).to_have_url(re.compile(r"/channels/[^/]+$"))
        channel_id = provider.page.url.rsplit("/", 1)[-1]

        subscriber = await sign_up(browser, base, "subscriber", "Sam")
        people.append(subscriber)
        page = subscriber.page
        account = await sim.account(balance="1000")
        await subscriber.goto("/accounts")
        await page.get_by_test_id("account-label").fill("Deriv sim")
        await page.get_by_test_id("account-token").fill(account.token)
        await page.get_by_test_id("link-account").click()
        await expect(page.get_by_test_id("verified")).to_be_visible()

        # Subscribing to the paid plan goes to the checkout page; cancelling comes back.
        await subscriber.goto(f"/channels/{channel_id}")
        await expect(page.get_by_test_id("paid-plan")).to_contain_text("9.99 USD every 30 days")
        await subscriber.shot(shots, "01-paid-channel")
        await page.get_by_test_id("risk-submit").click()
        await expect(page).to_have_url(re.compile(re.escape(stripe_sim.url) + "/c/pay/"))
        await expect(page.get_by_text("9.99 USD every 30 days")).to_be_visible()
        await subscriber.shot(shots, "02-checkout-page")
        await page.get_by_role("button", name="Cancel").click()
        await expect(page).to_have_url(re.compile(rf"/channels/{channel_id}\?checkout=cancelled"))
        await expect(page.get_by_test_id("checkout-cancelled")).to_be_visible()
        await subscriber.shot(shots, "03-checkout-cancelled")

        # Subscribe again and pay: back on the subscriptions, active once confirmed.
        await page.get_by_test_id("risk-submit").click()
        await expect(page).to_have_url(re.compile(re.escape(stripe_sim.url) + "/c/pay/"))
        await page.get_by_role("button", name="Pay").click()
        await expect(page).to_have_url(re.compile(r"/subscriptions\?checkout=success"))
        card = page.locator("[data-testid^='subscription-']")
        await expect(card).to_have_count(1)
        await expect(card.get_by_test_id("status")).to_have_text("active", timeout=WAIT_MS)
        await expect(page.get_by_test_id("receipt")).to_contain_text("9.99 USD")
        await expect(card).to_contain_text("Priya's Premium Calls")
        await subscriber.shot(shots, "04-subscribed-and-receipt")

        # The provider's revenue card.
        await provider.goto("/my-channels")
        revenue = provider.page.get_by_test_id(f"revenue-{channel_id}")
        await expect(revenue.get_by_test_id("revenue-total")).to_have_text("9.99 USD")
        await expect(revenue.get_by_test_id("revenue-active")).to_have_text("1")
        await provider.shot(shots, "05-provider-revenue")

        # The next payment fails; after the grace period the subscription is paused.
        (stripe_sub,) = await stripe_sim.subscriptions()
        await stripe_sim.fail_payments(stripe_sub["id"], True, "Your card was declined.")
        await stripe_sim.advance(stripe_sub["id"])
        await wait_for(stripe_sim.all_delivered, what="the failed payment's webhook")
        await subscriber.goto("/subscriptions")
        await expect(card.get_by_test_id("status")).to_have_text("past due")
        await expect(card.get_by_test_id("past-due")).to_be_visible()
        await subscriber.shot(shots, "06-past-due")
        assert await swept(time.time() + 4 * DAY) == 1  # type: ignore[operator]
        await subscriber.goto("/subscriptions")
        await expect(card.get_by_test_id("status")).to_have_text("paused")
        await expect(card.get_by_test_id("paused-reason")).to_contain_text(
            "payment failed: Your card was declined."
        )
        await expect(card.get_by_test_id("pause")).to_have_count(0)  # paying lifts it
        await expect(card).to_contain_text("Priya's Premium Calls")
        await expect(page.get_by_test_id("receipt")).to_have_count(1)
        await subscriber.shot(shots, "07-paused-payment-failed")

        # Paid again: active.
        await stripe_sim.fail_payments(stripe_sub["id"], False)
        await stripe_sim.advance(stripe_sub["id"])
        await wait_for(stripe_sim.all_delivered, what="the payment's webhooks")
        await subscriber.goto("/subscriptions")
        await expect(page.get_by_test_id("paused-reason")).to_have_count(0)
        await expect(card.get_by_test_id("status")).to_have_text("active")
        await expect(page.get_by_test_id("receipt")).to_have_count(2)

        # Cancel at period end: it stays active until its end date.
        page.once("dialog", lambda dialog: dialog.accept())
        await card.get_by_test_id("cancel-at-period-end").click()
        await expect(card.get_by_test_id("ends-at-period-end")).to_be_visible()
        await expect(card.get_by_test_id("status")).to_have_text("active")
        await subscriber.shot(shots, "08-cancelled-at-period-end")
    finally:
        for person in people:
            await person.context.close()
