"""The provider's journey in a real browser: safe, audited sending and live counters.

Paula (a provider) has a channel with one subscriber (a Deriv simulator account) and a
delegate, Tom. A stray key while her panel is disarmed sends nothing (the API's list of
the channel's signals stays empty) and says how to send; armed, a key opens the
confirmation with the contract, the stake and the audience, and Enter sends it. Tom sends
one too. Paula's counters move from the live feed without a reload, and her history says
who sent each signal; the API says the same. Arming lapses when the tab is hidden and
when she leaves the page. The
delegate list survives a reload of Settings, and Tom is removed there. Screenshots go to
test-artifacts/screenshots/<test>/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.fixtures.dashboard import Person, sign_up
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import PASSWORD, ApiServer
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.e2e

# What the browser does when the tab is hidden and shown again (a test's Chromium has
# one window, always visible).
HIDE_AND_SHOW_THE_TAB = """() => {
  const state = (value) =>
    Object.defineProperty(document, 'visibilityState', { value, configurable: true })
  state('hidden')
  document.dispatchEvent(new Event('visibilitychange'))
  state('visible')
}"""

# Settlement of a 15 s contract, on a busy machine.
SETTLED_MS = 60_000


async def api_signals(base: str, email: str, channel_id: str) -> list[dict[str, Any]]:
    """``GET /channels/{id}/signals`` as ``email`` sees it, over the API itself."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        login.raise_for_status()
        token = login.json()["access_token"]
        listed = await client.get(
            f"/api/v1/channels/{channel_id}/signals",
            headers={"Authorization": f"Bearer {token}"},
        )
        listed.raise_for_status()
        items: list[dict[str, Any]] = listed.json()
        return items


async def test_a_provider_sends_safely_sees_who_sent_what_and_counters_move_live(
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
        page = paula.page
        await page.get_by_test_id("new-channel").click()
        await page.get_by_label("Name").fill("Paula's Volatility Calls")
        await page.get_by_label("Description").fill("R_100 momentum, 15 s expiries.")
        await page.get_by_test_id("channel-submit").click()
        await expect(page).to_have_url(re.compile(r"/channels/[^/]+$"))
        channel_id = page.url.rsplit("/", 1)[-1]

        # One subscriber, trading on a Deriv simulator account.
        sam = await sign_up(browser, base, "subscriber", "Sam")
        people.append(sam)
        account = await sim.account(balance="1000")
        await sam.goto("/accounts")
        await sam.page.get_by_test_id("account-label").fill("Deriv sim")
        await sam.page.get_by_test_id("account-token").fill(account.token)
        await sam.page.get_by_test_id("link-account").click()
        await expect(sam.page.get_by_test_id("verified")).to_be_visible()
        await sam.goto(f"/channels/{channel_id}")
        await sam.page.get_by_test_id("risk-submit").click()
        await expect(sam.page.get_by_test_id("subscribed")).to_be_visible()

        # Tom becomes a delegate; Settings opened again still lists him.
        tom = await sign_up(browser, base, "provider", "Tom")
        people.append(tom)
        await paula.goto(f"/channels/{channel_id}/settings")
        await page.get_by_test_id("delegate-email").fill(tom.email)
        await page.get_by_test_id("add-delegate").click()
        await expect(page.get_by_test_id("delegates")).to_contain_text(tom.email)
        await page.reload()
        await expect(page.get_by_test_id("delegates")).to_contain_text(tom.email)
        await paula.shot(shots, "01-settings-delegate-after-reload")

        # Paula's channel page: disarmed; a stray key sends nothing and says how to send.
        await paula.goto(f"/channels/{channel_id}")
        await expect(page.get_by_test_id("ws-status").first).to_have_text("live")
        await expect(page.get_by_test_id("arm-state")).to_have_text("Disarmed")
        await expect(page.get_by_test_id("count-signals")).to_have_text("0")
        await expect(page.get_by_test_id("count-subscribers")).to_have_text("1")
        await page.keyboard.press("c")
        await expect(page.get_by_test_id("arm-hint")).to_have_text(
            "Arm the panel to send with the keyboard"
        )
        await page.keyboard.press("Enter")
        await expect(page.get_by_test_id("confirm-signal")).to_have_count(0)
        await paula.shot(shots, "02-stray-key-while-disarmed")
        assert await api_signals(base, paula.email, channel_id) == []
        await expect(page.get_by_test_id("signal-history")).to_have_count(0)

        # Armed: the key opens the confirmation with the contract and the stake; Enter sends.
        await page.get_by_test_id("arm-toggle").check()
        await expect(page.get_by_test_id("arm-state")).to_have_text("Armed")
        await page.keyboard.press("c")
        confirm = page.get_by_test_id("confirm-signal")
        await expect(confirm).to_contain_text("CALL R_100")
        await expect(confirm).to_contain_text("expires in 15 s")
        await expect(page.get_by_test_id("confirm-stake")).to_have_text("1")
        await expect(page.get_by_test_id("confirm-audience")).to_have_text(
            "1 subscriber of Paula's Volatility Calls"
        )
        await paula.shot(shots, "03-confirmation")
        # Escape cancels; nothing went out.
        await page.keyboard.press("Escape")
        await expect(confirm).to_have_count(0)
        await page.keyboard.press("c")
        await expect(confirm).to_be_visible()
        await page.keyboard.press("Enter")
        await expect(confirm).to_have_count(0)
        last = page.get_by_test_id("last-signal")
        await expect(last).to_contain_text("CALL R_100")
        await expect(last.get_by_test_id("count-placed")).to_have_text(re.compile("1 placed"))
        history = page.get_by_test_id("signal-history")
        await expect(history.locator("tbody tr")).to_have_count(1)
        await expect(history.get_by_test_id("sent-by")).to_have_text(["Paula (owner)"])
        await expect(page.get_by_test_id("count-signals")).to_have_text("1")
        await paula.shot(shots, "04-sent-by-the-owner")

        # Tom sends a PUT from his own page while Paula's stays open: her counters and
        # history move from the live feed, without a reload.
        await tom.goto(f"/channels/{channel_id}")
        await expect(tom.page.get_by_test_id("ws-status").first).to_have_text("live")
        await tom.page.get_by_test_id("arm-toggle").check()
        await tom.page.keyboard.press("p")
        await expect(tom.page.get_by_test_id("confirm-signal")).to_contain_text("PUT R_100")
        await tom.page.get_by_test_id("confirm-send").click()
        await expect(tom.page.get_by_test_id("last-signal")).to_contain_text("PUT R_100")
        await expect(tom.page.get_by_test_id("sent-by").first).to_have_text("Tom (delegate)")
        await tom.shot(shots, "05-delegate-sent")

        await expect(page.get_by_test_id("count-signals")).to_have_text("2")
        await expect(history.get_by_test_id("sent-by")).to_have_text(
            ["Tom (delegate)", "Paula (owner)"]
        )
        # Both contracts settle; won / lost follow, still without a reload.
        await expect(page.get_by_test_id("count-won-lost")).to_have_text(
            re.compile(r"^(2 / 0|1 / 1|0 / 2)$"), timeout=SETTLED_MS
        )
        await paula.shot(shots, "06-counters-moved-live")

        listed = await api_signals(base, paula.email, channel_id)
        assert [
            (s["direction"], s["sent_by"]["display_name"], s["sent_by"]["role"]) for s in listed
        ] == [
            ("PUT", "Tom", "delegate"),
            ("CALL", "Paula", "owner"),
        ]

        # Arming lapses when the tab is hidden...
        await page.get_by_test_id("arm-toggle").check()
        await expect(page.get_by_test_id("arm-state")).to_have_text("Armed")
        await page.evaluate(HIDE_AND_SHOW_THE_TAB)
        await expect(page.get_by_test_id("arm-state")).to_have_text("Disarmed")

        # ...and when the page is left: back on it, a key only hints again.
        await page.get_by_test_id("arm-toggle").check()
        await expect(page.get_by_test_id("arm-state")).to_have_text("Armed")
        await page.get_by_test_id("settings-link").click()
        await expect(page.get_by_test_id("delegates")).to_contain_text(tom.email)
        await page.go_back()
        await expect(page.get_by_test_id("arm-state")).to_have_text("Disarmed")
        await page.keyboard.press("c")
        await expect(page.get_by_test_id("arm-hint")).to_be_visible()
        await expect(page.get_by_test_id("confirm-signal")).to_have_count(0)
        await paula.shot(shots, "07-disarmed-after-leaving")
        assert len(await api_signals(base, paula.email, channel_id)) == 2

        # Tom is removed in Settings; a reload shows him gone. His signal stays his.
        await paula.goto(f"/channels/{channel_id}/settings")
        delegates = page.get_by_test_id("delegates")
        await (
            delegates.locator("li", has_text=tom.email).get_by_role("button", name="Remove").click()
        )
        await expect(delegates).not_to_contain_text(tom.email)
        await page.reload()
        await expect(delegates).to_contain_text("No delegates.")
        await paula.shot(shots, "08-delegate-removed")
        await paula.goto(f"/channels/{channel_id}")
        await expect(history.get_by_test_id("sent-by")).to_have_text(
            ["Tom (delegate)", "Paula (owner)"]
        )
    except Exception:
        for i, person in enumerate(people):
            await person.shot(shots, f"FAILED-{i}")
        for name in ("router", "ledger", "worker"):
            print(f"--- {name} log ---\n{services.log(name)[-2000:]}")
        raise
