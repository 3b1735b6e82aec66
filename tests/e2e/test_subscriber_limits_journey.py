"""A subscriber's limits in a real browser: the live API serving frontend/dist, router,
ledger and Deriv worker, and the Deriv simulator for the broker account.

Sam links a Deriv account (1,000.00), opens a free channel and sets a fixed stake of 10
with a max stake of 50 and a daily loss limit of 30: the form previews the real stake
and warns that the max stake exceeds the loss limit. He lowers the max stake, subscribes,
and his subscription lists its limits. The provider sends five signals, every contract
loses: three trades are placed, and the history shows the others refused with the reason
("daily loss limit reached: 30.00 of 30.00 at risk or lost today"). Screenshots go to
test-artifacts/screenshots/<test>/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from apps.core.db import connect_db
from apps.core.settings import Settings
from tests.fixtures.dashboard import Person, sign_up
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import Api, ApiServer
from tests.fixtures.pipeline import Pipeline
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.e2e

SIGNAL = {"asset": "R_100", "direction": "CALL", "expiry_seconds": 60, "stake": "10"}


async def test_subscriber_limits_journey(
    api_server: ApiServer,
    api_settings: Settings,
    services: Pipeline,
    sim: SimHandle,
    browser: Browser,
    shots: Path,
) -> None:
    base = api_server.url
    people: list[Person] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        api = Api(client)
        provider = await api.user("provider", "priya")
        channel_id = await api.channel(provider, "Priya's Indices", price="0")
        try:
            sam = await sign_up(browser, base, "subscriber", "Sam")
            people.append(sam)
            page = sam.page
            account = await sim.account(balance="1000")
            await sam.goto("/accounts")
            await page.get_by_test_id("account-label").fill("Deriv sim")
            await page.get_by_test_id("account-token").fill(account.token)
            await page.get_by_test_id("link-account").click()
            await expect(page.get_by_test_id("verified")).to_be_visible()

            # The form previews the real stake and warns of a max stake above the limit.
            await sam.goto(f"/channels/{channel_id}")
            await page.get_by_label("Stake mode").select_option("percent")
            await page.get_by_test_id("risk-stake").fill("1")
            await page.get_by_test_id("risk-max-stake").fill("5")
            preview = page.get_by_test_id("stake-preview")
            await expect(preview).to_contain_text("1 % of 1,000.00 = 10.00 → capped at 5.00")
            await expect(preview).to_contain_text("Deriv's minimum is 0.35")
            await page.get_by_label("Stake mode").select_option("fixed")
            await page.get_by_test_id("risk-stake").fill("10")
            await page.get_by_test_id("risk-max-stake").fill("50")
            await page.get_by_label("Daily loss limit").fill("30")
            await expect(preview).to_contain_text("10.00 per trade")
            warning = page.get_by_test_id("risk-warning")
            await expect(warning).to_contain_text(
                "Your max stake (50.00) exceeds your daily loss limit (30.00)"
            )
            await sam.shot(shots, "01-preview-and-warning")
            await page.get_by_test_id("risk-max-stake").fill("10")
            await expect(warning).to_have_count(0)
            await page.get_by_test_id("risk-submit").click()
            await expect(page.get_by_test_id("subscribed")).to_be_visible()
            await sam.goto("/subscriptions")
            await expect(page.get_by_test_id("limits")).to_contain_text("loss limit 30")
            await sam.shot(shots, "02-subscribed-with-limits")

            # Five signals, every contract lost: three trades, then the limit refuses.
            await sim.faults(force_outcome="lost")
            path = f"/api/v1/channels/{channel_id}/signals"
            for _ in range(5):
                await api.ok("POST", path, provider, json=SIGNAL)

            mongo, _ = connect_db(api_settings.mongodb_uri, api_settings.mongodb_database)
            db = mongo[api_settings.mongodb_database]

            async def five_final() -> list[dict[str, Any]] | None:
                orders = [o async for o in db.orders.find({"channel_id": channel_id})]
                done = len(orders) == 5 and all(
                    o["state"] != "placed" or o.get("outcome") for o in orders
                )
                return orders if done else None

            try:
                orders = await wait_for(five_final, timeout=120, what="five trades, final")
            finally:
                mongo.close()
            assert sorted(o["state"] for o in orders) == ["placed"] * 3 + ["rejected"] * 2
            await sam.goto("/trades")
            reasons = page.get_by_test_id("trade-reason")
            await expect(reasons).to_have_count(2)
            await expect(reasons.first).to_contain_text("daily loss limit reached: ")
            await expect(reasons.first).to_contain_text(" of 30.00 at risk or lost today")
            await sam.shot(shots, "03-trades-refused-with-the-reason")
        finally:
            for person in people:
                await person.context.close()
