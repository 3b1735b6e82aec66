"""Notifications in a real browser: the live API serving frontend/dist, the notifier and
the Telegram stand-in over the Bot API.

A subscriber opens Notifications: the grid shows in-app on and e-mail and Telegram off
by default; they turn Telegram on by default and save, then link Telegram — the page
shows the code, the test sends `/start <code>` to the bot as the phone would, and the page
shows the chat linked. A trade of theirs is placed: the navbar's badge counts it, the
in-app list shows it, the bot sends it to the chat once; marked read, the badge goes.
They unlink Telegram. Screenshots go to test-artifacts/screenshots/<test>/.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from apps.core.db import connect_db
from apps.core.messages import Direction, Execution, ExecutionBatch, ExecutionState, encode
from apps.core.nats import connect
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.notifier.main import run
from apps.notifier.telegram_sim.server import RunningTelegramSim, running_telegram_sim
from tests.fixtures.dashboard import sign_up
from tests.fixtures.live_api import ApiServer
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.e2e

TOKEN = "5151:e2e-token"
CHAT = 555


@pytest.fixture
async def telegram() -> AsyncIterator[RunningTelegramSim]:
    async with running_telegram_sim(token=TOKEN) as sim:
        yield sim


@pytest.fixture
def api_settings(settings: Settings, dashboard_port: int, telegram: RunningTelegramSim) -> Settings:
    # Only what this journey needs: no broker simulators.
    return replace(
        settings,
        cors_origins=f"http://127.0.0.1:{dashboard_port}",
        telegram_api_url=telegram.url,
        telegram_bot_token=TOKEN,
        metrics_enabled=False,
    )


@pytest.fixture
async def notifier(api_settings: Settings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(api_settings, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture
def api(api_server: ApiServer) -> Iterator[ApiServer]:
    yield api_server


async def place_trade(settings: Settings, user_id: str) -> None:
    execution = Execution(
        order_id=f"sig1.sub-{user_id}",
        signal_id="sig1",
        channel_id="c1",
        subscription_id=f"sub-{user_id}",
        user_id=user_id,
        state=ExecutionState.PLACED,
        at=time.time(),
        asset="R_100",
        direction=Direction.PUT,
        stake=Decimal("5"),
        currency="USD",
    )
    nc = await connect(settings.nats_url, name="pytest-e2e")
    try:
        batch = ExecutionBatch(signal_id="sig1", channel_id="c1", executions=[execution])
        await nc.jetstream().publish(
            Topology(settings.namespace).execution_subject("c1", "sig1"), encode(batch)
        )
    finally:
        await nc.close()


async def user_id_of(settings: Settings, email: str) -> str:
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    try:
        user = await mongo[settings.mongodb_database]["users"].find_one({"email": email})
        assert user is not None
        return str(user["_id"])
    finally:
        mongo.close()


async def bot_messages(telegram: RunningTelegramSim) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=telegram.url) as http:
        return list((await http.get("/admin/messages", params={"chat_id": CHAT})).json())


async def test_preferences_telegram_link_and_the_in_app_list(
    browser: Browser,
    api: ApiServer,
    notifier: None,
    telegram: RunningTelegramSim,
    api_settings: Settings,
    shots: Path,
) -> None:
    person = await sign_up(browser, api.url, "subscriber", "Nora Notified")
    page = person.page
    await page.get_by_test_id("nav-notifications").click()
    await expect(page.get_by_test_id("prefs-grid")).to_be_visible()
    await expect(page.get_by_test_id("cell-won-in_app")).to_contain_text("On · default")
    await expect(page.get_by_test_id("cell-won-telegram")).to_contain_text("Off · default")
    await expect(page.get_by_test_id("empty")).to_contain_text("No notifications yet")
    await person.shot(shots, "01-defaults")

    await page.get_by_test_id("default-telegram").check()
    await page.get_by_test_id("cell-lost-email").click()  # an override: e-mail on for losses
    await page.get_by_test_id("save-prefs").click()
    await expect(page.get_by_test_id("prefs-saved")).to_be_visible()
    await expect(page.get_by_test_id("cell-won-telegram")).to_contain_text("On · default")
    await expect(page.get_by_test_id("cell-lost-email")).to_have_text("On")

    await page.get_by_test_id("telegram-link").click()
    command = page.get_by_test_id("telegram-command")
    await expect(command).to_contain_text("/start ")
    await expect(page.get_by_test_id("telegram-open")).to_have_attribute(
        "href", "https://t.me/copier_sim_bot?start=" + (await command.inner_text()).split()[-1]
    )
    await person.shot(shots, "02-telegram-code")
    async with httpx.AsyncClient(base_url=telegram.url) as http:
        await http.post(
            "/admin/updates", json={"chat_id": CHAT, "text": await command.inner_text()}
        )
    await expect(page.get_by_test_id("telegram-linked")).to_be_visible()
    await person.shot(shots, "03-telegram-linked")

    await place_trade(api_settings, await user_id_of(api_settings, person.email))

    async def told() -> list[str]:
        return [m["text"] for m in await bot_messages(telegram) if "Trade placed" in m["text"]]

    await wait_for(told, what="the trade sent to the linked chat")
    await page.reload()
    await expect(page.get_by_test_id("unread-badge")).to_have_text("1")
    await expect(page.get_by_test_id("notification")).to_contain_text("Trade placed: R_100 PUT")
    await expect(page.get_by_test_id("unread-count")).to_have_text("1 unread")
    await person.shot(shots, "04-in-app-list")
    await page.get_by_test_id("mark-all-read").click()
    await expect(page.get_by_test_id("unread-count")).to_have_text("0 unread")
    await expect(page.get_by_test_id("unread-badge")).to_have_count(0)
    await page.get_by_test_id("telegram-unlink").click()
    await expect(page.get_by_test_id("telegram-link")).to_be_visible()
    texts = [m["text"] for m in await bot_messages(telegram)]
    assert sum(t.startswith("Linked") for t in texts) == 1
    assert sum("Trade placed" in t for t in texts) == 1
    await person.context.close()
