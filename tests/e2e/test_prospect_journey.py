"""A prospect's journey in a real browser (Debian's Chromium, driven by Playwright) against
the live API serving frontend/dist: not signed in, they browse /channels, sort and filter
on the server, page, open a channel and see its track record (the equity curve and the
drawdown, or a plain "no track record yet") and its past signals, then the way to
subscribe. Screenshots go to test-artifacts/screenshots/<test>/.

The channels' statistics are the ledger's `channel_stats` documents, inserted here in the
ledger's shape (track windows, record age, assets), as the ledger keeps them.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from apps.core.db import connect_db
from apps.core.settings import Settings
from tests.fixtures.dashboard import WAIT_MS
from tests.fixtures.live_api import Api, ApiServer

pytestmark = pytest.mark.e2e


def window(ret: str, rate: float, drawdown: str, signals: int) -> dict[str, Any]:
    won = round(rate * signals)
    return {
        "signals": signals,
        "settled": signals,
        "won": won,
        "lost": signals - won,
        "win_rate": rate,
        "return_on_stake": ret,
        "profit": "3.00",
        "max_drawdown": drawdown,
        "avg_delay_ms": 140.0,
        "p95_delay_ms": 410.0,
    }


async def keep_record(
    settings: Settings, channel_id: str, ret: str, rate: float, days: int, assets: list[str]
) -> None:
    w = window(ret, rate, "4.50", 12)
    mongo, db = connect_db(settings.mongodb_uri, settings.mongodb_database)
    try:
        await db.database["channel_stats"].update_one(
            {"_id": channel_id},
            {
                "$set": {
                    "track": {"7d": w, "30d": w, "90d": w, "all": w},
                    "first_signal_at": time.time() - days * 86400,
                    "last_signal_at": time.time() - 3600,
                    "record_days": days,
                    "assets": assets,
                    "updated_at": time.time(),
                }
            },
            upsert=True,
        )
    finally:
        mongo.close()


async def test_a_prospect_compares_channels_and_reads_a_track_record(
    api_server: ApiServer, api_settings: Settings, browser: Browser, shots: Path
) -> None:
    base = api_server.url
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        api = Api(client)
        paula = await api.user("provider", "paula")
        steady = await api.channel(paula, "Steady EURUSD", price="15")
        scalps = await api.channel(paula, "Cheap Scalps", price="2")
        newcomer = await api.channel(paula, "Newcomer", price="0")
        await keep_record(api_settings, steady, "0.32", 0.75, 120, ["EURUSD", "GBPUSD"])
        await keep_record(api_settings, scalps, "-0.08", 0.42, 20, ["R_100"])
        record = await client.get(f"/api/v1/channels/{steady}/track-record")
        public_signals = await client.get(f"/api/v1/channels/{steady}/signals")

    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        # Not signed in: the marketplace, best 30-day return first, a new channel last.
        await page.goto(base + "/channels")
        cards = page.get_by_test_id("channel-cards").locator("[data-testid^=channel-card-]")
        await expect(cards).to_have_count(3)
        await expect(page.get_by_test_id("channel-total")).to_have_text("3 channels")
        await expect(cards.nth(0)).to_contain_text("Steady EURUSD")
        first = page.get_by_test_id(f"channel-card-{steady}")
        await expect(first.get_by_test_id("card-return")).to_have_text("32.0%")
        await expect(first.get_by_test_id("card-win-rate")).to_have_text("75.0%")
        await expect(first.get_by_test_id("card-drawdown")).to_have_text("4.50")
        await expect(first.get_by_test_id("card-age")).to_have_text("120 days")
        await expect(first.get_by_test_id("card-assets")).to_contain_text("GBPUSD")
        await expect(first.get_by_test_id("card-price")).to_contain_text("15.00 USD / 30 days")
        fresh = page.get_by_test_id(f"channel-card-{newcomer}")
        await expect(fresh.get_by_test_id("card-age")).to_have_text("No record yet")
        await expect(cards.nth(2)).to_contain_text("Newcomer")
        await page.screenshot(path=str(shots / "01-marketplace.png"), full_page=True)

        # Cheapest first: the server sorts, the URL keeps the choice.
        await page.get_by_test_id("sort").select_option("price")
        await page.get_by_test_id("order").select_option("asc")
        await expect(page).to_have_url(re.compile(r"sort=price"))
        await expect(cards.nth(0)).to_contain_text("Newcomer")
        await expect(cards.nth(2)).to_contain_text("Steady EURUSD")
        await page.screenshot(path=str(shots / "02-sorted-by-price.png"), full_page=True)

        # EURUSD with a win rate of 60 % at least: one channel.
        await page.get_by_test_id("filter-asset").fill("eurusd")
        await page.get_by_test_id("filter-min-win-rate").fill("60")
        await page.get_by_test_id("apply-filters").click()
        await expect(page).to_have_url(re.compile(r"asset=eurusd"))
        await expect(cards).to_have_count(1)
        await expect(cards.nth(0)).to_contain_text("Steady EURUSD")
        await page.screenshot(path=str(shots / "03-filtered.png"), full_page=True)
        await page.get_by_test_id("filter-asset").fill("XAUUSD")
        await page.get_by_test_id("apply-filters").click()
        await expect(page.get_by_test_id("empty")).to_have_text("No channel matches these filters.")
        await page.get_by_test_id("clear-filters").click()
        await expect(cards).to_have_count(3)

        # The channel's page: the track record, its charts, past signals, how to subscribe.
        await page.get_by_test_id("sort").select_option("")
        await page.get_by_test_id(f"channel-card-{steady}").click()
        await expect(page).to_have_url(re.compile(rf"/channels/{steady}$"))
        await expect(page.get_by_test_id("channel-name")).to_have_text("Steady EURUSD")
        track = page.get_by_test_id("track-record")
        await expect(track).to_be_visible()
        served = record.json() if record.status_code == 200 else {}
        all_time = (served.get("windows") or {}).get("all") or {}
        if served.get("equity"):
            await expect(track.get_by_test_id("equity-chart").locator("canvas")).to_be_visible()
            await expect(track.get_by_test_id("drawdown-chart").locator("canvas")).to_be_visible()
            await track.get_by_test_id("window-all").click()
            await expect(track.get_by_test_id("window-all")).to_have_attribute(
                "aria-pressed", "true"
            )
            await expect(track.get_by_test_id("track-signals")).to_have_text(
                str(all_time.get("signals", 0))
            )
        elif all_time.get("signals"):
            await expect(track.get_by_test_id("track-figures")).to_be_visible()
        else:
            # No track record served for the channel yet: said plainly, never an error.
            await expect(track.get_by_test_id("empty")).to_contain_text("No track record yet")
        history = page.get_by_test_id("public-signals")
        await expect(history).to_be_visible()
        if public_signals.status_code == 200 and public_signals.json():
            await expect(history.locator("tbody tr").first).to_be_visible()
        else:
            await expect(history.get_by_test_id("empty")).to_have_text("No past signals yet.")
        await expect(page.get_by_text("Create a subscriber account")).to_be_visible()
        await page.screenshot(path=str(shots / "04-channel-page.png"), full_page=True)
    finally:
        await context.close()
