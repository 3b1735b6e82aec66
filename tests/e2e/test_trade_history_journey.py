"""A subscriber checks their trades against their broker's statement, in a real browser.

The live API serves frontend/dist; the router, ledger and Deriv worker run with the Deriv
simulator. A provider has two channels; a subscriber copies both with one simulator
account. Each channel sends a signal; on the Trades page each trade shows its asset,
direction, expiry, entry and exit spots, payout and contract id, and these are what the
simulator's own ledger (GET /admin/ledger) booked. The channel, outcome and date filters
narrow the list and live in the URL; the CSV export downloads the same rows. On a phone
the table is cards. Screenshots go to test-artifacts/screenshots/<test>/.
"""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, expect

from tests.fixtures.dashboard import Person, sign_up
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import Api, ApiServer, User
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.e2e

SETTLE_MS = 60_000  # a 60 s contract ends in 2 s at the simulator's time scale


async def send(http: Api, provider: User, channel_id: str, direction: str) -> str:
    body = {"asset": "R_100", "direction": direction, "expiry_seconds": 60, "stake": "5"}
    accepted = await http.ok("POST", f"/api/v1/channels/{channel_id}/signals", provider, json=body)
    return str(accepted["signal_id"])


async def shown_contracts(rows: Locator) -> list[str]:
    return [text.strip() for text in await rows.get_by_test_id("trade-contract").all_inner_texts()]


def booked(ledger: list[dict[str, Any]], signal_id: str) -> dict[str, Any]:
    [row] = [r for r in ledger if (r.get("passthrough") or {}).get("signal_id") == signal_id]
    return row


async def test_a_subscriber_checks_their_trades_against_the_broker(
    api_server: ApiServer,
    services: Pipeline,
    sim: SimHandle,
    http: Api,
    browser: Browser,
    shots: Path,
) -> None:
    base = api_server.url
    provider = await http.user("provider", "paula")
    alpha = await http.channel(provider, "Alpha Calls")
    beta = await http.channel(provider, "Beta Puts")
    person: Person = await sign_up(browser, base, "subscriber", "Sam")
    try:
        # The subscriber copies both channels with one verified simulator account.
        me = await http.login(person.email)
        account = await sim.account(balance="1000")
        account_id = await http.broker_account(me, account.token)
        await http.ok("POST", f"/api/v1/broker-accounts/{account_id}/verify", me)
        for channel_id in (alpha, beta):
            await http.subscribe(me, channel_id, account_id, stake="5")

        call = await send(http, provider, alpha, "CALL")
        put = await send(http, provider, beta, "PUT")

        page = person.page
        await person.goto("/trades")
        table = page.get_by_test_id("trades")
        rows = table.locator("tbody tr[data-order]")
        await expect(rows).to_have_count(2)
        for signal_id in (call, put):
            await expect(
                table.get_by_test_id(f"trade-{signal_id}").get_by_test_id("trade-outcome")
            ).to_have_text(re.compile("won|lost"), timeout=SETTLE_MS)
        await person.shot(shots, "01-trades-settled")

        # Each trade is what the broker booked: its contract, payout and spots.
        ledger = await sim.ledger()
        outcomes: dict[str, str] = {}
        for signal_id, direction in ((call, "CALL"), (put, "PUT")):
            row = table.get_by_test_id(f"trade-{signal_id}")
            sold = booked(ledger, signal_id)
            await expect(row.get_by_test_id("trade-asset")).to_have_text("R_100")
            await expect(row.get_by_test_id("trade-direction")).to_have_text(direction)
            await expect(row.get_by_test_id("trade-expiry")).to_have_text("1 min")
            await expect(row.get_by_test_id("trade-broker")).to_have_text("Deriv")
            await expect(row.get_by_test_id("trade-contract")).to_have_text(
                str(sold["contract_id"])
            )
            payout = (await row.get_by_test_id("trade-payout").inner_text()).strip()
            assert Decimal(payout) == Decimal(str(sold["payout"]))
            spots = (await row.get_by_test_id("trade-spots").inner_text()).strip()
            entry, exit_ = (Decimal(part.strip()) for part in spots.split("→"))
            assert entry == Decimal(str(sold["entry_spot"]))
            assert exit_ == Decimal(str(sold["exit_spot"]))
            await expect(row.get_by_test_id("trade-delay")).to_have_text(
                re.compile(r"\d+(\.\d)? m?s")
            )
            outcome = (await row.get_by_test_id("trade-outcome").inner_text()).strip()
            assert outcome == sold["status"]
            outcomes[signal_id] = outcome

        # The details row tells the instants and the order id.
        await table.get_by_test_id(f"trade-{call}").get_by_test_id("trade-toggle").click()
        detail = table.get_by_test_id("trade-detail")
        await expect(detail).to_contain_text(f"{call}.")
        await expect(detail.get_by_test_id("detail-exit")).not_to_have_text("—")
        await person.shot(shots, "02-trade-details")
        await table.get_by_test_id(f"trade-{call}").get_by_test_id("trade-toggle").click()

        # The channel filter narrows the list and lives in the URL.
        await page.get_by_test_id("filter-channel").select_option(beta)
        await expect(rows).to_have_count(1)
        await expect(table.get_by_test_id(f"trade-{put}")).to_be_visible()
        await expect(page).to_have_url(re.compile(f"channel={beta}"))
        await person.shot(shots, "03-filtered-by-channel")
        await page.reload()  # the filter survives a reload
        await expect(page.get_by_test_id("filter-channel")).to_have_value(beta)
        await expect(rows).to_have_count(1)
        await page.get_by_test_id("filter-clear").click()
        await expect(rows).to_have_count(2)

        # The outcome filter keeps the trades with that outcome.
        wanted = outcomes[call]
        await page.get_by_test_id("filter-outcome").select_option(wanted)
        expected = sorted(s for s, o in outcomes.items() if o == wanted)
        await expect(rows).to_have_count(len(expected))
        for outcome in await rows.get_by_test_id("trade-outcome").all_inner_texts():
            assert outcome.strip() == wanted

        # The CSV export downloads the same rows, with the same filter.
        async with page.expect_download() as started:
            await page.get_by_test_id("export-csv").click()
        download = await started.value
        saved = shots / "trades.csv"
        await download.save_as(saved)
        with saved.open(newline="") as f:
            exported = list(csv.DictReader(f))
        assert [r["contract_id"] for r in exported] == await shown_contracts(rows)
        assert {r["outcome"] for r in exported} == {wanted}
        for r in exported:
            sold = booked(ledger, r["signal_id"])
            assert r["contract_id"] == str(sold["contract_id"])
            assert Decimal(r["entry_spot"]) == Decimal(str(sold["entry_spot"]))
            assert Decimal(r["exit_spot"]) == Decimal(str(sold["exit_spot"]))
            assert r["asset"] == "R_100" and r["broker_kind"] == "deriv"
        await page.get_by_test_id("filter-clear").click()
        await expect(rows).to_have_count(2)

        # Dates: today (UTC) holds both trades, tomorrow none.
        today = datetime.now(UTC).date()
        tomorrow = today + timedelta(days=1)
        await page.get_by_test_id("filter-from").fill(tomorrow.isoformat())
        await expect(page.get_by_text("No trades match these filters.")).to_be_visible()
        await expect(page).to_have_url(re.compile(f"from={tomorrow.isoformat()}"))
        await page.get_by_test_id("filter-from").fill(today.isoformat())
        await page.get_by_test_id("filter-to").fill(today.isoformat())
        await expect(rows).to_have_count(2)
        await person.shot(shots, "04-filtered-by-date")

        # On a phone each trade is a card: every value is labelled and nothing is cut off.
        await page.set_viewport_size({"width": 390, "height": 844})
        card = table.get_by_test_id(f"trade-{call}")
        # The header is kept for screen readers only; the row is a block (wait for the
        # layout to follow the new viewport, it is not instant).
        await expect(card).to_have_css("display", "block")
        header = await table.locator("thead").bounding_box()
        assert header is not None and header["height"] <= 1
        box = await card.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390 + 1
        pnl = await card.get_by_test_id("trade-pnl").bounding_box()
        assert pnl is not None and pnl["x"] + pnl["width"] <= 390 + 1
        await person.shot(shots, "05-trades-phone")
    finally:
        await person.context.close()
