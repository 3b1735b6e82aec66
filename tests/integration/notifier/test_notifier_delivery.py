"""The notifier against real servers: nats-server, Valkey, the MongoDB stand-in, a real
SMTP server (aiosmtpd) and the Telegram stand-in over the Bot API.

Executions in → each e-mail and each Telegram message out once: when the notifier is
SIGKILLed in the middle of a delivery and started again, when the SMTP server refuses
and then recovers, when Telegram answers 429; a chat is linked by `/start <code>`; over
the rate limit, the rest arrives as one digest; a subscription ending soon is told once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from nats.aio.client import Client as NATS

from apps.core import embedded
from apps.core import notifications as store
from apps.core.db import connect_db
from apps.core.messages import Direction, Execution, ExecutionBatch, ExecutionState, encode
from apps.core.notifications import DeliveryChannel
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.notifier.dispatch import Dispatcher
from apps.notifier.main import purge, run, scan_ending
from apps.notifier.telegram_sim.server import RunningTelegramSim, running_telegram_sim
from tests.fixtures.mailbox import Mailbox
from tests.fixtures.waiting import wait_for

TOKEN = "4242:test-token"
DAY = 86_400


@pytest.fixture
async def telegram() -> AsyncIterator[RunningTelegramSim]:
    async with running_telegram_sim(token=TOKEN) as sim:
        yield sim


def notifier_settings(
    settings: Settings, box: Mailbox, tg: RunningTelegramSim, **kw: Any
) -> Settings:
    values: dict[str, Any] = {
        "smtp_host": box.host,
        "smtp_port": box.port,
        "smtp_starttls": False,
        "smtp_from": "Copier <notify@copier.test>",
        "telegram_api_url": tg.url,
        "telegram_bot_token": TOKEN,
        "metrics_enabled": False,
        "notify_rate_per_minute": 100,
        "log_level": "INFO",
    }
    return Settings(**{**settings.__dict__, **values, **kw})


class World:
    def __init__(self, settings: Settings, nc: NATS) -> None:
        self.client, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
        self.db: store.Db = self.client[settings.mongodb_database]
        self.redis = connect_redis(settings.redis_url)
        self.topology = Topology(settings.namespace)
        self.js = nc.jetstream()

    async def users(self, count: int, *, linked: bool = True) -> list[str]:
        ids = [f"u{i}" for i in range(count)]
        await self.db["users"].insert_many([{"_id": u, "email": f"{u}@example.com"} for u in ids])
        for i, user in enumerate(ids):
            await store.save_preferences(
                self.db,
                self.redis,
                self.topology,
                user,
                defaults={"email": True, "telegram": True},
                overrides={},
                digest="off",
            )
            if linked:
                await store.set_telegram_chat(self.db, self.redis, self.topology, user, 1000 + i)
        return ids

    async def placed(self, users: list[str], signal_id: str = "s1") -> None:
        executions = [
            Execution(
                order_id=f"{signal_id}.{u}",
                signal_id=signal_id,
                channel_id="c1",
                subscription_id=f"sub-{u}",
                user_id=u,
                state=ExecutionState.PLACED,
                at=time.time(),
                asset="R_100",
                direction=Direction.CALL,
                stake=Decimal("2"),
                currency="USD",
            )
            for u in users
        ]
        batch = ExecutionBatch(signal_id=signal_id, channel_id="c1", executions=executions)
        await self.js.publish(self.topology.execution_subject("c1", signal_id), encode(batch))

    async def outbox_states(self) -> dict[str, str]:
        return {d["_id"]: d["state"] async for d in self.db[store.OUTBOX].find({})}

    async def close(self) -> None:
        await self.redis.aclose()
        self.client.close()


@pytest.fixture
async def world(settings: Settings, nc: NATS) -> AsyncIterator[World]:
    found = World(settings, nc)
    try:
        yield found
    finally:
        await found.close()


@contextlib.asynccontextmanager
async def notifier(settings: Settings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def spawn_notifier(settings: Settings, log: str) -> asyncio.subprocess.Process:
    with open(log, "ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "apps.notifier.main",
            env={**os.environ, **settings.as_env()},
            cwd=embedded.PROJECT_ROOT,
            stdout=out,
            stderr=out,
        )


async def sent_messages(tg: RunningTelegramSim) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as http:
        return list((await http.get(f"{tg.url}/admin/messages")).json())


async def test_each_message_goes_out_once_across_a_sigkill_mid_delivery(
    settings: Settings, world: World, mailbox: Mailbox, telegram: RunningTelegramSim, tmp_path: Any
) -> None:
    users = await world.users(5)
    # One delivery at a time, and a claim that lapses soon after the kill.
    own = notifier_settings(
        settings, mailbox, telegram, notify_concurrency=1, notify_claim_seconds=3.0
    )
    mailbox.hold_recipient = 3  # the third e-mail is in the middle of its SMTP dialogue
    process = await spawn_notifier(own, str(tmp_path / "notifier.log"))
    try:
        await world.placed(users)
        await wait_for(mailbox.holding.is_set, what="the third e-mail held at RCPT")
        process.send_signal(signal.SIGKILL)
        await process.wait()
        mailbox.release.set()
        process = await spawn_notifier(own, str(tmp_path / "notifier.log"))

        async def all_sent() -> bool:
            states = await world.outbox_states()
            return len(states) == 10 and set(states.values()) == {"sent"}

        await wait_for(all_sent, what="all ten deliveries recorded sent after the restart")
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        await process.wait()

    ids = mailbox.message_ids()
    assert len(ids) == 5 and set(ids.values()) == {1}, ids
    assert sorted(m["To"] for m in mailbox.messages) == [f"{u}@example.com" for u in users]
    chats = sorted(m["chat"]["id"] for m in await sent_messages(telegram))
    assert chats == [1000 + i for i in range(5)]
    inbox = await world.db[store.INBOX].count_documents({})
    assert inbox == 5


async def test_refusals_are_retried_and_a_chat_links_by_code(
    settings: Settings, world: World, mailbox: Mailbox, telegram: RunningTelegramSim
) -> None:
    (user,) = await world.users(1, linked=False)
    code = await store.new_link_code(world.redis, world.topology, user)
    mailbox.refuse_next = 2  # the SMTP server is in trouble, then recovers
    async with httpx.AsyncClient(base_url=telegram.url) as http:
        await http.put("/admin/fail", json={"status": 429, "count": 1, "retry_after": 1})
        async with notifier(notifier_settings(settings, mailbox, telegram)):
            await http.post("/admin/updates", json={"chat_id": 77, "text": "/start nope"})
            await http.post("/admin/updates", json={"chat_id": 77, "text": f"/start {code}"})

            async def linked() -> bool:
                doc = await world.db[store.PREFS].find_one({"_id": user})
                return bool(doc and doc.get("telegram_chat_id") == 77)

            await wait_for(linked, what="the chat linked to the user")
            await world.placed([user])

            async def delivered() -> bool:
                states = await world.outbox_states()
                return len(states) == 4 and set(states.values()) == {"sent"}

            # Two replies to the chat, the e-mail and the Telegram message.
            await wait_for(delivered, what="every delivery sent once the servers recover")
            replies = [m["text"] for m in (await http.get("/admin/messages")).json()]
    assert len(mailbox.messages) == 1 and mailbox.messages[0]["To"] == f"{user}@example.com"
    assert "Trade placed: R_100 CALL" in str(mailbox.messages[0]["Subject"])
    # One of each, the first of them after Telegram's 429.
    assert len(replies) == 3
    assert sum(r.startswith("That code is unknown") for r in replies) == 1
    assert sum(r.startswith("Linked") for r in replies) == 1
    assert sum(r.startswith("Trade placed") for r in replies) == 1
    assert await world.redis.get(world.topology.telegram_link_code_key(code)) is None


async def test_over_the_rate_limit_the_rest_arrives_as_one_digest(
    settings: Settings, world: World, mailbox: Mailbox, telegram: RunningTelegramSim
) -> None:
    (user,) = await world.users(1, linked=False)
    own = notifier_settings(
        settings,
        mailbox,
        telegram,
        notify_rate_per_minute=2,
        notify_overflow_digest_seconds=1,
    )
    async with notifier(own):
        for i in range(6):
            await world.placed([user], signal_id=f"s{i}")

        async def three() -> bool:
            return len(mailbox.messages) >= 3

        await wait_for(three, what="two e-mails and a digest")
        states = await world.outbox_states()
    subjects = sorted(str(m["Subject"]) for m in mailbox.messages)
    assert len(mailbox.messages) == 3 and set(states.values()) == {"sent"}
    assert subjects[0] == "4 notifications"
    assert all(s.startswith("Trade placed") for s in subjects[1:])
    assert (await world.db[store.INBOX].count_documents({"user_id": user})) == 6


async def test_a_subscription_ending_soon_is_told_once_per_period(
    settings: Settings, world: World
) -> None:
    (user,) = await world.users(1, linked=False)
    now = time.time()
    soon = datetime.fromtimestamp(now + 2 * DAY, UTC)
    await world.db["channels"].insert_one({"_id": "c1", "name": "Gold Signals"})
    await world.db["subscriptions"].insert_many(
        [
            {"_id": "s-soon", "channel_id": "c1", "subscriber_id": user, "status": "active",
             "expires_at": soon},
            {"_id": "s-later", "channel_id": "c1", "subscriber_id": user, "status": "active",
             "expires_at": datetime.fromtimestamp(now + 20 * DAY, UTC)},
            {"_id": "s-ended", "channel_id": "c1", "subscriber_id": user, "status": "ended",
             "expires_at": soon},
        ]
    )  # fmt: skip
    dispatcher = Dispatcher(
        world.db,
        world.redis,
        world.topology,
        available=frozenset(DeliveryChannel),
        rate_per_minute=10,
        overflow_digest_seconds=300,
    )
    assert await scan_ending(world.db, dispatcher, 3, now) == 1
    assert await scan_ending(world.db, dispatcher, 3, now + 3600) == 1  # the next scan
    inbox = await world.db[store.INBOX].find({"user_id": user}).to_list(None)
    assert [n["title"] for n in inbox] == ["Subscription ending in 2 days"]
    assert "Gold Signals" in inbox[0]["body"]
    entries = await world.db[store.OUTBOX].find({}).to_list(None)
    assert [(e["channel"], e["to"]) for e in entries] == [("email", f"{user}@example.com")]


async def test_old_finished_notifications_are_purged_and_pending_ones_kept(
    settings: Settings, world: World
) -> None:
    now = time.time()
    old, recent = now - 50 * DAY, now - DAY
    await world.db[store.OUTBOX].insert_many(
        [
            {"_id": "sent-old", "state": "sent", "created_at": old},
            {"_id": "failed-old", "state": "failed", "created_at": old},
            {"_id": "pending-old", "state": "pending", "created_at": old},
            {"_id": "sending-old", "state": "sending", "created_at": old},
            {"_id": "sent-recent", "state": "sent", "created_at": recent},
        ]
    )
    await world.db[store.DIGEST_ITEMS].insert_many(
        [
            {"_id": "d-flushed-old", "flushed": True, "at": old},
            {"_id": "d-waiting-old", "flushed": False, "at": old},
        ]
    )
    await world.db[store.INBOX].insert_many(
        [{"_id": "n-old", "at": now - 100 * DAY}, {"_id": "n-recent", "at": old}]
    )

    assert await purge(world.db, settings, now) == 4

    outbox = sorted([d["_id"] async for d in world.db[store.OUTBOX].find({})])
    assert outbox == ["pending-old", "sending-old", "sent-recent"]
    assert [d["_id"] async for d in world.db[store.DIGEST_ITEMS].find({})] == ["d-waiting-old"]
    assert [d["_id"] async for d in world.db[store.INBOX].find({})] == ["n-recent"]
