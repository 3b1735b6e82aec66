"""The dashboard in a real browser (Debian's Chromium, driven by Playwright) against the
live API serving frontend/dist, the router, ledger and Deriv worker, and the simulator.

A provider signs up and creates a channel; a subscriber signs up, links and verifies a
simulator account and subscribes; the provider sends a CALL and watches its fan-out
reach 1 placed; the subscriber sees the trade, then its outcome. A delegated trader
sends a PUT and cannot open the channel's settings. A subscriber links IQ Option accounts
(e-mail and password on the real balance, an ssid, a two-factor account the broker
refuses, which is not saved) at the IQ Option simulator. Screenshots of each main page go to
test-artifacts/screenshots/<test>/ for a person to look at.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from apps.core.brokers.iqoption import login_form
from tests.fixtures.dashboard import WAIT_MS, Person, navbar_height, sign_up
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.iqoption_sim import IQOptionSim
from tests.fixtures.live_api import ApiServer
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.e2e


async def test_provider_subscriber_and_delegate_in_the_browser(
    api_server: ApiServer,
    services: Pipeline,
    sim: SimHandle,
    browser: Browser,
    shots: Path,
) -> None:
    base = api_server.url
    people: list[Person] = []
    try:
        # Field errors from the API show beside the fields.
        visitor = await browser.new_page()
        await visitor.goto(base + "/signup")
        await visitor.get_by_label("Display name").fill("X")
        await visitor.get_by_label("Email").fill("x@example.test")
        await visitor.get_by_label("Password").fill("short")
        await visitor.get_by_test_id("submit").click()
        await expect(visitor.get_by_test_id("password-error")).to_contain_text("8", timeout=WAIT_MS)
        await visitor.screenshot(path=str(shots / "01-signup-errors.png"), full_page=True)
        await visitor.close()

        # A provider signs up and creates a channel.
        provider = await sign_up(browser, base, "provider", "Paula")
        people.append(provider)
        await expect(provider.page).to_have_url(re.compile(r"/my-channels$"))
        await provider.page.get_by_test_id("new-channel").click()
        await provider.page.get_by_label("Name").fill("Paula's Volatility Calls")
        await provider.page.get_by_label("Description").fill("R_100 momentum, 15 s expiries.")
        await provider.page.get_by_test_id("channel-submit").click()
        await expect(provider.page).to_have_url(re.compile(r"/channels/[^/]+$"))
        channel_id = provider.page.url.rsplit("/", 1)[-1]
        await expect(provider.page.get_by_test_id("ws-status").first).to_have_text("live")

        # A subscriber signs up, links a simulator account, verifies it and subscribes.
        subscriber = await sign_up(browser, base, "subscriber", "Samantha Featherstonehaugh")
        people.append(subscriber)
        # The navigation is one row on a 1366 px laptop with a subscriber's five links and a
        # long name, and collapses into the menu button (one row too) on a narrow window.
        for width in (1366, 1024, 800):
            assert await navbar_height(subscriber, width) < 64, width
        assert await navbar_height(provider, 1366) < 64
        await subscriber.page.set_viewport_size({"width": 1280, "height": 900})
        await provider.page.set_viewport_size({"width": 1280, "height": 900})
        await subscriber.shot(shots, "02-channels")
        account = await sim.account(balance="1000")
        await subscriber.goto("/accounts")
        await subscriber.page.get_by_test_id("account-label").fill("Deriv sim")
        await subscriber.page.get_by_test_id("account-token").fill(account.token)
        await subscriber.page.get_by_test_id("link-account").click()
        await expect(subscriber.page.get_by_test_id("verified")).to_be_visible()
        await subscriber.shot(shots, "03-broker-accounts")
        await subscriber.goto(f"/channels/{channel_id}")  # a deep link, loaded directly
        await subscriber.page.get_by_test_id("risk-submit").click()
        await expect(subscriber.page.get_by_test_id("subscribed")).to_be_visible()
        await subscriber.shot(shots, "04-channel-subscribed")

        # The provider sends a CALL; the fan-out bar reaches 1 placed of 1, in place.
        page = provider.page
        await page.get_by_test_id("call").click()
        await page.get_by_test_id("confirm-send").click()
        panel = page.get_by_test_id("last-signal")
        await expect(panel.get_by_test_id("count-placed")).to_have_text(re.compile(r"1 placed"))
        await expect(panel.get_by_test_id("count-total")).to_have_text("of 1")
        await expect(panel.get_by_test_id("last-placed")).to_contain_text("ms")
        await expect(panel.get_by_test_id("broker-deriv")).to_have_text("Deriv: 1 placed")
        await expect(page.get_by_test_id("signal-history")).to_contain_text("CALL")
        await provider.shot(shots, "05-provider-console")

        # The subscriber sees the trade, and later its outcome.
        await subscriber.goto("/trades")
        trades = subscriber.page.get_by_test_id("trades")
        await expect(trades.get_by_test_id("trade-state").first).to_have_text("placed")
        await expect(trades.get_by_test_id("trade-broker").first).to_have_text("Deriv")
        await subscriber.shot(shots, "06-trades-open")
        await expect(trades.get_by_test_id("trade-outcome").first).to_have_text(
            re.compile("won|lost"), timeout=40_000
        )
        await subscriber.shot(shots, "07-trades-settled")
        await subscriber.goto("/subscriptions")
        await subscriber.page.get_by_test_id("pause").click()
        await expect(subscriber.page.get_by_test_id("status")).to_have_text("paused")
        await subscriber.page.get_by_test_id("pause").click()
        await expect(subscriber.page.get_by_test_id("status")).to_have_text("active")
        await subscriber.shot(shots, "08-subscriptions")

        # The provider delegates the channel to a trader (by e-mail) in the settings.
        trader = await sign_up(browser, base, "subscriber", "Tom", phone=True)
        people.append(trader)
        await provider.goto(f"/channels/{channel_id}/settings")
        await page.get_by_test_id("delegate-email").fill(trader.email)
        await page.get_by_test_id("add-delegate").click()
        await expect(page.get_by_test_id("delegates")).to_contain_text(trader.email)
        # Opened again, the settings list the delegates the channel has.
        await page.reload()
        await expect(page.get_by_test_id("delegates")).to_contain_text(trader.email)
        await provider.shot(shots, "09-channel-settings")

        # The trader reloads: the session comes back from the refresh cookie alone, and the
        # new live connection lists the delegated channel.
        await trader.page.reload()
        await expect(trader.page.get_by_test_id("whoami")).to_contain_text("Tom")
        await trader.goto("/my-channels")
        await expect(trader.page.get_by_test_id(f"my-channel-{channel_id}")).to_be_visible()
        await trader.shot(shots, "10-delegate-my-channels-phone")
        await trader.page.get_by_test_id(f"my-channel-{channel_id}").click()
        await expect(trader.page.get_by_test_id("signal-panel")).to_be_visible()
        await expect(trader.page.get_by_test_id("settings-link")).to_have_count(0)
        await expect(trader.page.get_by_test_id("ws-status").first).to_have_text("live")
        await trader.page.get_by_test_id("put").click()
        await trader.page.get_by_test_id("confirm-send").click()
        trader_panel = trader.page.get_by_test_id("last-signal")
        await expect(trader_panel).to_contain_text("PUT R_100")
        await expect(trader_panel.get_by_test_id("count-placed")).to_have_text(
            re.compile("1 placed")
        )
        await expect(trader_panel.get_by_test_id("count-total")).to_have_text("of 1")
        await trader.shot(shots, "11-delegate-console-phone")
        await trader.goto(f"/channels/{channel_id}/settings")
        await expect(trader.page.get_by_test_id("not-owner")).to_be_visible()
        await trader.shot(shots, "12-delegate-settings-refused")

        # The provider's history shows both signals; then sign out ends the session.
        await provider.goto(f"/channels/{channel_id}")
        await expect(page.get_by_test_id("signal-history").locator("tbody tr")).to_have_count(2)
        await provider.shot(shots, "13-provider-history")
        await page.get_by_test_id("logout").click()
        await expect(page).to_have_url(re.compile(r"/login$"))
        await page.goto(base + "/my-channels")
        await expect(page).to_have_url(re.compile(r"/login\?next="))
    except Exception:
        # Leave evidence for a person: every open page as it looked, and the services' logs.
        for i, person in enumerate(people):
            await person.shot(shots, f"FAILED-{i}")
        for name in ("router", "ledger", "worker"):
            print(f"--- {name} log ---\n{services.log(name)[-2000:]}")
        raise


async def test_iq_option_accounts_are_linked_in_the_browser(
    api_server: ApiServer, iqoption_sim: IQOptionSim, browser: Browser, shots: Path
) -> None:
    base = api_server.url
    subscriber = await sign_up(browser, base, "subscriber", "Ivo")
    page = subscriber.page
    try:
        account, two_factor, by_ssid = (
            (await iqoption_sim.create_accounts(1, balance="750"))[0],
            (await iqoption_sim.create_accounts(1, two_factor=True))[0],
            (await iqoption_sim.create_accounts(1))[0],
        )
        await subscriber.goto("/accounts")
        await page.locator("label[for=acc-kind-iqoption]").click()  # the button of the radio
        await expect(page.get_by_test_id("account-token")).to_have_count(0)

        # E-mail and password, trading the real balance: verified, as the broker reports it.
        await page.get_by_test_id("account-label").fill("IQ real")
        await page.get_by_test_id("account-login").fill(account.email)
        await page.get_by_test_id("account-password").fill(account.password)
        await page.get_by_test_id("account-balance").select_option("real")
        await page.get_by_test_id("link-account").click()
        await expect(page.get_by_test_id("verified")).to_have_count(1)
        row = page.get_by_test_id("accounts").locator("li", has_text="IQ real")
        await expect(row.get_by_test_id("account-kind")).to_contain_text("IQ Option · real")
        await expect(row).to_contain_text("750")

        # A two-factor account: the broker's refusal, in plain words, and nothing saved.
        await page.get_by_test_id("account-label").fill("IQ 2fa")
        await page.get_by_test_id("account-login").fill(two_factor.email)
        await page.get_by_test_id("account-password").fill(two_factor.password)
        await page.get_by_test_id("link-account").click()
        await expect(page.get_by_test_id("link-error")).to_contain_text("two-factor sign-in")
        await expect(page.get_by_test_id("link-error")).to_contain_text("ssid")
        await expect(
            page.get_by_test_id("accounts").locator("li", has_text="IQ 2fa")
        ).to_have_count(0)

        # The same person links another account by its ssid, on its practice balance.
        async with httpx.AsyncClient() as http:
            login = await http.post(
                iqoption_sim.login_url, data=login_form(by_ssid.email, by_ssid.password)
            )
        await page.get_by_test_id("account-signin").select_option("ssid")
        await page.get_by_test_id("account-balance").select_option("practice")
        await page.get_by_test_id("account-label").fill("IQ ssid")
        await page.get_by_test_id("account-ssid").fill(login.json()["data"]["ssid"])
        await page.get_by_test_id("link-account").click()
        await expect(page.get_by_test_id("verified")).to_have_count(2)
        by_ssid_row = page.get_by_test_id("accounts").locator("li", has_text="IQ ssid")
        await expect(by_ssid_row.get_by_test_id("account-kind")).to_contain_text(
            "IQ Option · practice"
        )
        await subscriber.shot(shots, "12-iq-option-accounts")
    finally:
        await subscriber.context.close()


async def test_a_revoked_token_is_shown_and_relinked_in_the_browser(
    api_server: ApiServer,
    services: Pipeline,
    sim: SimHandle,
    browser: Browser,
    shots: Path,
) -> None:
    base = api_server.url
    provider = await sign_up(browser, base, "provider", "Paula")
    subscriber = await sign_up(browser, base, "subscriber", "Sam")
    try:
        await provider.page.get_by_test_id("new-channel").click()
        await provider.page.get_by_label("Name").fill("Paula's Calls")
        await provider.page.get_by_test_id("channel-submit").click()
        await expect(provider.page).to_have_url(re.compile(r"/channels/[^/]+$"))
        channel_id = provider.page.url.rsplit("/", 1)[-1]
        await expect(provider.page.get_by_test_id("ws-status").first).to_have_text("live")
        linked = await sim.account(balance="1000")
        await subscriber.goto("/accounts")
        await subscriber.page.get_by_test_id("account-token").fill(linked.token)
        await subscriber.page.get_by_test_id("link-account").click()
        await expect(subscriber.page.get_by_test_id("verified")).to_be_visible()
        await subscriber.goto(f"/channels/{channel_id}")
        await subscriber.page.get_by_test_id("risk-submit").click()
        await expect(subscriber.page.get_by_test_id("subscribed")).to_be_visible()

        # The token is revoked at the broker; the next signal's order is refused.
        fresh = await sim.revoke(linked)
        await provider.page.get_by_test_id("call").click()
        await provider.page.get_by_test_id("confirm-send").click()
        panel = provider.page.get_by_test_id("last-signal")
        await expect(panel.get_by_test_id("count-rejected")).to_have_text(re.compile("1 rejected"))

        # The subscriber is told on every page, and re-links on the accounts page.
        await subscriber.goto("/subscriptions")
        await expect(subscriber.page.get_by_test_id("relink-banner")).to_contain_text(
            "needs re-linking", timeout=40_000
        )
        await expect(subscriber.page.get_by_test_id("paused-reason")).to_contain_text(
            "broker account needs re-linking"
        )
        await subscriber.shot(shots, "21-subscription-paused-for-relink")
        await subscriber.page.get_by_test_id("relink-banner").get_by_role("link").click()
        await expect(subscriber.page.get_by_test_id("needs-relink")).to_be_visible()
        await expect(subscriber.page.get_by_test_id("relink-reason")).to_contain_text(
            "InvalidToken"
        )
        await subscriber.shot(shots, "22-account-needs-relink")
        await subscriber.page.get_by_test_id("relink-token").fill(fresh.token)
        await subscriber.page.get_by_test_id("relink").click()
        await expect(subscriber.page.get_by_test_id("needs-relink")).to_have_count(0)
        await subscriber.goto("/subscriptions")
        await expect(subscriber.page.get_by_test_id("status")).to_have_text("active")
        await expect(subscriber.page.get_by_test_id("relink-banner")).to_have_count(0)

        # The next signal is placed again.
        await provider.page.get_by_test_id("call").click()
        await provider.page.get_by_test_id("confirm-send").click()
        await expect(panel.get_by_test_id("count-placed")).to_have_text(re.compile("1 placed"))
    except Exception:
        for i, person in enumerate((provider, subscriber)):
            await person.shot(shots, f"FAILED-relink-{i}")
        for name in ("router", "ledger", "worker"):
            print(f"--- {name} log ---\n{services.log(name)[-2000:]}")
        raise
