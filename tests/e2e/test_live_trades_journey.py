"""A subscriber sees their trade the moment it happens, in a real browser.

Sam copies Paula's channel on a Deriv simulator account and keeps his Trades page open.
Paula sends a CALL from her panel: a toast tells Sam at once that it was placed at Deriv,
with the contract and his stake, and his Trades page lists it; when the contract settles a
second toast gives the result with the P&L and the page shows the outcome, all without a
reload. The delay from the broker's placement to the toast on Sam's screen is recorded
(not asserted) in test-artifacts/live-trades.json. Screenshots go to
test-artifacts/screenshots/<test>/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.fixtures.dashboard import ROOT, Person, sign_up
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import ApiServer
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.e2e

# Settlement of a 15 s contract, and the ledger's booking, on a busy machine.
SETTLED_MS = 60_000
REPORT = ROOT / "test-artifacts" / "live-trades.json"


async def test_a_subscriber_is_told_of_each_trade_and_its_result_as_it_happens(
    api_server: ApiServer,
    services: Pipeline,
    sim: SimHandle,
    browser: Browser,
    shots: Path,
) -> None:
    base = api_server.url
    people: list[Person] = []
    try:
        paula = await sign_up(browser, base, "provider", "Paula")
        people.append(paula)
        await paula.page.get_by_test_id("new-channel").click()
        await paula.page.get_by_label("Name").fill("Paula's Volatility Calls")
        await paula.page.get_by_label("Description").fill("R_100 momentum, 15 s expiries.")
        await paula.page.get_by_test_id("channel-submit").click()
        await expect(paula.page).to_have_url(re.compile(r"/channels/[^/]+$"))
        channel_id = paula.page.url.rsplit("/", 1)[-1]

        sam = await sign_up(browser, base, "subscriber", "Sam")
        people.append(sam)
        page = sam.page
        account = await sim.account(balance="1000")
        await sam.goto("/accounts")
        await page.get_by_test_id("account-label").fill("Deriv sim")
        await page.get_by_test_id("account-token").fill(account.token)
        await page.get_by_test_id("link-account").click()
        await expect(page.get_by_test_id("verified")).to_be_visible()
        await sam.goto(f"/channels/{channel_id}")
        await page.locator("#stake-mode").select_option("fixed")
        await page.get_by_test_id("risk-stake").fill("2")
        await page.get_by_test_id("risk-submit").click()
        await expect(page.get_by_test_id("subscribed")).to_be_visible()

        # Sam keeps his Trades page open: nothing yet, and no toast.
        await page.get_by_role("link", name="Trades", exact=True).click()
        await expect(page.get_by_role("heading", name="Trades")).to_be_visible()
        await expect(page.get_by_text("No trades yet")).to_be_visible()
        await expect(page.get_by_test_id("toast")).to_have_count(0)
        await sam.shot(shots, "01-trades-empty")

        # Paula sends a CALL from her armed panel.
        await paula.goto(f"/channels/{channel_id}")
        await expect(paula.page.get_by_test_id("ws-status").first).to_have_text("live")
        await paula.page.get_by_test_id("arm-toggle").check()
        await paula.page.keyboard.press("c")
        await expect(paula.page.get_by_test_id("confirm-signal")).to_contain_text("CALL R_100")
        await paula.page.keyboard.press("Enter")
        await expect(paula.page.get_by_test_id("last-signal")).to_contain_text("CALL R_100")

        # Sam is told at once, on whatever page he is.
        placed = page.locator("[data-testid=toast][data-kind=placed]")
        await expect(placed).to_have_text(re.compile(r"R_100 CALL 2\.00 placed at Deriv"))
        await expect(placed).to_have_attribute("role", "status")
        shown_ms = float(await placed.get_attribute("data-created-at") or "nan")
        placed_at = float(await placed.get_attribute("data-at") or "nan")
        await sam.shot(shots, "02-placed-toast")

        # The contract settles (the simulator runs contracts 30x faster): a second toast
        # gives the result and the P&L.
        result = page.locator(
            "[data-testid=toast][data-kind=won], [data-testid=toast][data-kind=lost]"
        )
        await expect(result).to_have_text(
            re.compile(r"R_100 CALL (won \+\d+\.\d\d|lost \u22122\.00) USD"), timeout=SETTLED_MS
        )
        outcome = (await result.get_attribute("data-kind")) or ""
        await sam.shot(shots, "03-result-toast")

        # His Trades page lists the trade with its outcome, without a reload.
        rows = page.get_by_test_id("trades").locator("tbody tr")
        await expect(rows).to_have_count(1, timeout=SETTLED_MS)
        await expect(rows.get_by_test_id("trade-state")).to_have_text("placed")
        await expect(rows.get_by_test_id("trade-broker")).to_have_text("Deriv")
        await expect(rows.get_by_test_id("trade-outcome")).to_have_text(outcome, timeout=SETTLED_MS)
        await sam.shot(shots, "04-trade-listed-with-its-outcome")

        # The toasts leave by themselves.
        await expect(page.get_by_test_id("toast")).to_have_count(0, timeout=SETTLED_MS)

        delay_ms = round(shown_ms - placed_at * 1000, 1)
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps({"placement_to_toast_ms": delay_ms}) + "\n")
        print(f"\nplacement → toast on the subscriber's screen: {delay_ms} ms")
    except Exception:
        for i, person in enumerate(people):
            await person.shot(shots, f"FAILED-{i}")
        for name in ("router", "ledger", "worker"):
            print(f"--- {name} log ---\n{services.log(name)[-2000:]}")
        raise
