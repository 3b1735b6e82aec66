"""Taking care of an account, in a real browser (Debian's Chromium, driven by Playwright)
against the live API serving frontend/dist, the router, ledger and Deriv worker, and the
Deriv simulator.

A visitor's sign-up mistake and a subscriber's subscribe mistake read as plain words beside
the field; a token the broker refuses is not saved, with the broker's reason; on a phone
the pages do not scroll sideways and the tables are cards; signing out everywhere in one
browser signs out the other (and the first browser's other tab) without a reload, saying
why; and dark mode follows the system and the navbar's toggle. Screenshots go to
test-artifacts/screenshots/<test>/.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.fixtures.dashboard import WAIT_MS, Person, sign_up
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import PASSWORD, Api, ApiServer
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
SIGNAL = {"asset": "R_100", "direction": "CALL", "expiry_seconds": 15, "stake": "1"}


async def sign_in(browser: Browser, base: str, email: str, **context: object) -> Person:
    """A second browser (its own cookies and storage) signed in as ``email``."""
    ctx = await browser.new_context(**context)  # type: ignore[arg-type]
    page = await ctx.new_page()
    page.set_default_timeout(WAIT_MS)
    person = Person(ctx, page, base, email)
    await person.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_test_id("submit").click()
    # Attached: on a phone the navigation (and the name in it) is behind the menu button.
    await expect(page.get_by_test_id("whoami")).to_be_attached()
    return person


async def scrolls_sideways(page: Page) -> bool:
    return bool(
        await page.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
    )


async def test_plain_errors_verified_links_phones_and_signing_out_everywhere(
    api_server: ApiServer,
    services: Pipeline,
    sim: SimHandle,
    browser: Browser,
    shots: Path,
) -> None:
    base = api_server.url
    people: list[Person] = []
    try:
        # A sign-up mistake: the field in words, beside the field.
        visitor = await browser.new_page()
        await visitor.goto(base + "/signup")
        await visitor.get_by_label("Display name").fill("Vic")
        await visitor.get_by_label("Email").fill("vic-at-example")
        await visitor.get_by_label("Password").fill(PASSWORD)
        await visitor.get_by_test_id("submit").click()
        await expect(visitor.get_by_test_id("email-error")).to_have_text(
            "Enter a valid e-mail address"
        )
        await visitor.screenshot(path=str(shots / "01-signup-plain-error.png"), full_page=True)
        await visitor.close()

        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            http = Api(client)
            provider = await http.user("provider", "paula")
            channel = await http.channel(provider, "Paula's Calls", price="0")

            # A token the broker refuses is not saved; the broker's reason is shown.
            sam = await sign_up(browser, base, "subscriber", "Sam")
            people.append(sam)
            page = sam.page
            await sam.goto("/accounts")
            await page.get_by_test_id("account-label").fill("Refused")
            await page.get_by_test_id("account-token").fill("no-such-token")
            await page.get_by_test_id("link-account").click()
            await expect(page.get_by_test_id("link-error")).to_contain_text(
                "Not linked — the broker said:"
            )
            await expect(page.get_by_test_id("empty")).to_have_text("No broker account linked yet.")
            await sam.shot(shots, "02-refused-token-not-saved")
            account = await sim.account(balance="500")
            await page.get_by_test_id("account-label").fill("Deriv sim")
            await page.get_by_test_id("account-token").fill(account.token)
            await page.get_by_test_id("link-account").click()
            await expect(page.get_by_test_id("verified")).to_have_count(1)
            await expect(page.get_by_test_id("link-error")).to_have_count(0)

            # A subscribe mistake: a negative stake is a negative stake, in words.
            await sam.goto(f"/channels/{channel}")
            await page.get_by_test_id("risk-stake").fill("-3")
            await page.get_by_test_id("risk-submit").click()
            stake_error = page.get_by_test_id("risk-form").locator(
                "#risk-stake ~ .invalid-feedback"
            )
            await expect(stake_error).to_have_text("Stake must be a positive amount, e.g. 10.00")
            await sam.shot(shots, "03-subscribe-plain-error")
            await page.get_by_test_id("risk-stake").fill("1")
            await page.get_by_test_id("risk-submit").click()
            await expect(page.get_by_test_id("subscribed")).to_be_visible()

            # A signal, so the subscriber has a trade and the provider a signal to list.
            sent = await http.ok(
                "POST", f"/api/v1/channels/{channel}/signals", provider, json=SIGNAL
            )

        # On a phone: no page scrolls sideways, and the tables are cards.
        phone = await sign_in(browser, base, sam.email, viewport=PHONE, is_mobile=True)
        people.append(phone)
        await phone.goto("/trades")
        await expect(phone.page.get_by_test_id("trades")).to_contain_text("Paula's Calls")
        assert not await scrolls_sideways(phone.page)
        await phone.shot(shots, "04-phone-trades")
        await phone.goto("/subscriptions")
        await expect(phone.page.get_by_text("Paula's Calls").first).to_be_visible()
        assert not await scrolls_sideways(phone.page)
        await phone.shot(shots, "05-phone-subscriptions")
        for path in ("/accounts", "/channels", f"/channels/{channel}"):
            await phone.goto(path)
            await expect(phone.page.get_by_test_id("whoami")).to_be_attached()
            assert not await scrolls_sideways(phone.page), path
        paula_phone = await sign_in(browser, base, provider.email, viewport=PHONE, is_mobile=True)
        people.append(paula_phone)
        await paula_phone.goto(f"/channels/{channel}")
        row = paula_phone.page.get_by_test_id(f"signal-{sent['signal_id']}")
        await expect(row).to_contain_text("CALL")
        # A card: the row is a block, and each cell leads with its label.
        assert await row.evaluate("tr => getComputedStyle(tr).display") == "block"
        assert await row.locator("td").first.get_attribute("data-label") == "Sent"
        assert not await scrolls_sideways(paula_phone.page)
        await paula_phone.shot(shots, "06-phone-signal-history-cards")

        # Sign out everywhere on the laptop: the phone and the laptop's other tab show
        # the login page with the reason, without a reload.
        other_tab = await sam.context.new_page()
        await other_tab.goto(base + "/subscriptions")
        await expect(other_tab.get_by_test_id("whoami")).to_be_visible()
        await expect(phone.page.get_by_test_id("whoami")).to_be_attached()
        await sam.page.get_by_test_id("logout-all").click()
        await expect(sam.page).to_have_url(re.compile(r"/login"))
        await expect(phone.page).to_have_url(re.compile(r"/login\?next="))
        await expect(phone.page.get_by_test_id("signed-out-reason")).to_contain_text(
            "You were signed out on this device because the account was signed out everywhere"
        )
        await phone.shot(shots, "07-phone-signed-out-everywhere")
        await expect(other_tab).to_have_url(re.compile(r"/login\?next="))
        await expect(other_tab.get_by_test_id("signed-out-reason")).to_contain_text(
            "You were signed out on this device because"
        )
        await other_tab.screenshot(path=str(shots / "08-other-tab-signed-out.png"))
    except Exception:
        for i, person in enumerate(people):
            await person.shot(shots, f"FAILED-{i}")
        for name in ("router", "ledger", "worker"):
            print(f"--- {name} log ---\n{services.log(name)[-2000:]}")
        raise
    finally:
        for person in people:
            await person.context.close()


async def test_dark_mode_follows_the_system_and_the_toggle(
    api_server: ApiServer, browser: Browser, shots: Path
) -> None:
    base = api_server.url
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, color_scheme="dark"
    )
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    html = page.locator("html")
    try:
        await page.goto(base + "/channels")
        toggle = page.get_by_test_id("theme-toggle")
        await expect(toggle).to_have_attribute("data-theme-choice", "system")
        await expect(html).to_have_attribute("data-bs-theme", "dark")
        body = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert body == "rgb(33, 37, 41)", body  # Bootstrap's dark body
        await page.screenshot(path=str(shots / "01-dark-by-system.png"), full_page=True)

        await toggle.click()  # system → light
        await expect(toggle).to_have_attribute("data-theme-choice", "light")
        await expect(html).to_have_attribute("data-bs-theme", "light")
        await page.screenshot(path=str(shots / "02-light-chosen.png"), full_page=True)
        # Remembered: a reload keeps the choice over the system's.
        await page.reload()
        await expect(html).to_have_attribute("data-bs-theme", "light")

        await toggle.click()  # light → dark
        await expect(html).to_have_attribute("data-bs-theme", "dark")
        await page.goto(base + "/login")
        await expect(html).to_have_attribute("data-bs-theme", "dark")
        await page.screenshot(path=str(shots / "03-dark-chosen-login.png"), full_page=True)

        await toggle.click()  # dark → system, which follows the device live
        await expect(toggle).to_have_attribute("data-theme-choice", "system")
        await page.emulate_media(color_scheme="light")
        await expect(html).to_have_attribute("data-bs-theme", "light")
        await page.emulate_media(color_scheme="dark")
        await expect(html).to_have_attribute("data-bs-theme", "dark")
    finally:
        await context.close()
