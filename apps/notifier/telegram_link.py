"""Linking a Telegram chat to a user: the bot's updates, read by long polling.

The user asks the API for a one-time code (apps.notifier.store.new_link_code) and sends
``/start <code>`` to the bot; this loop reads the update, links that chat to the code's
user and answers in the chat.

Guarantees: one notifier polls at a time (a lease in Redis: the Bot API answers 409 to a
second concurrent ``getUpdates``); the offset is committed to MongoDB only after an
update's link and reply are written, so a crash reads the update again, and reading it
again changes nothing (the link is a plain set, the reply goes through the outbox under an
id derived from the update's id, and the code is deleted only after both); a code links
once and expires (LINK_CODE_SECONDS).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from redis.asyncio import Redis

from apps.core.notifications import STATE, Db, DeliveryChannel, set_telegram_chat
from apps.core.topology import Topology
from apps.notifier import outbox
from apps.notifier.rules import notification_id
from apps.notifier.senders import TelegramBot, TelegramError

log = logging.getLogger("notifier.telegram")
POLL_SECONDS = 25  # getUpdates' long-poll timeout
LEASE_SECONDS = 60
LINKED = "Linked: your copier notifications will arrive in this chat."
UNKNOWN = (
    "That code is unknown or has expired. Ask for a new one on the Notifications page "
    "and send /start followed by the code."
)
HELP = (
    "To receive notifications here, send /start followed by the code the Notifications page shows."
)


def link_reply(update_id: int, chat_id: int, text: str) -> outbox.Entry:
    return outbox.Entry(
        id=notification_id(f"tg-update:{update_id}", "", DeliveryChannel.TELEGRAM),
        user_id="",
        channel=DeliveryChannel.TELEGRAM,
        to=str(chat_id),
        subject="",
        text=text,
    )


async def handle_update(
    db: Db, redis: Redis, topology: Topology, update: dict[str, Any]
) -> outbox.Entry | None:
    """Act on one update; the reply it enqueued (None for an update that is no message)."""
    message = update.get("message") or {}
    chat = (message.get("chat") or {}).get("id")
    text = str(message.get("text") or "").strip()
    if not isinstance(chat, int):
        return None
    command, _, argument = text.partition(" ")
    code = argument.strip().upper()
    key = topology.telegram_link_code_key(code) if code else ""
    if command.split("@")[0] == "/start" and code:
        user = await redis.get(key)
        if user:
            await set_telegram_chat(
                db, redis, topology, user.decode() if isinstance(user, bytes) else user, chat
            )
            reply = link_reply(update["update_id"], chat, LINKED)
        else:
            reply = link_reply(update["update_id"], chat, UNKNOWN)
    else:
        reply = link_reply(update["update_id"], chat, HELP)
    await outbox.enqueue(db, [reply])
    if key:
        await redis.delete(key)
    return reply


async def read_offset(db: Db) -> int:
    doc = await db[STATE].find_one({"_id": "telegram"})
    return int(doc["offset"]) if doc else 0


async def poll_updates(
    bot: TelegramBot,
    db: Db,
    redis: Redis,
    topology: Topology,
    stop: asyncio.Event,
    wake: asyncio.Event,
) -> None:
    """Until ``stop``: read and act on the bot's updates while holding the poller lease."""
    lease = topology.telegram_poller_key()
    me = str(uuid.uuid4())
    bot_name = ""
    while not stop.is_set():
        try:
            holder = await redis.set(lease, me, nx=True, ex=LEASE_SECONDS)
            if not holder and (await redis.get(lease)) != me.encode():
                await _pause(stop, LEASE_SECONDS / 4)
                continue
            await redis.expire(lease, LEASE_SECONDS)
            if not bot_name:
                bot_name = str((await bot.get_me()).get("username", ""))
                await redis.set(topology.telegram_bot_name_key(), bot_name)
            offset = await read_offset(db)
            updates = await bot.get_updates(offset, POLL_SECONDS)
            for update in updates:
                if await handle_update(db, redis, topology, update):
                    wake.set()
                offset = int(update["update_id"]) + 1
                await db[STATE].update_one(
                    {"_id": "telegram"}, {"$set": {"offset": offset}}, upsert=True
                )
        except TelegramError as exc:
            log.warning("Telegram's getUpdates failed: %s", exc)
            await _pause(stop, exc.retry_after or 5.0)
        except Exception:
            log.exception("could not read the bot's updates; trying again")
            await _pause(stop, 5.0)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
