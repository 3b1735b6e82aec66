"""Where notifications live, shared by the notifier and the API.

MongoDB collections:
- ``notification_prefs``: one document per user who chose (``_id`` the user id);
- ``notifications``: the in-app list (``_id`` the notification id, so a repeat is one);
- ``notification_outbox``: e-mail and Telegram deliveries (apps.notifier.outbox);
- ``notification_digest_items``: events waiting for their digest (``_id`` their id);
- ``notifier_state``: the Telegram updates offset.

Redis: ``notify:prefs-gen`` is bumped on every change of anyone's preferences, so the
notifier's cache is dropped before its next batch; ``notify:tg-code:<code>`` is a
one-time Telegram link code (it expires); ``notify:tg-bot`` the bot's username.
"""

from __future__ import annotations

import secrets
from typing import Any

from motor.motor_asyncio import AsyncIOMotorDatabase
from redis.asyncio import Redis

from apps.core.topology import Topology
from apps.notifier.rules import DeliveryChannel, DigestChoice, EventKind, Preferences

PREFS = "notification_prefs"
INBOX = "notifications"
OUTBOX = "notification_outbox"
DIGEST_ITEMS = "notification_digest_items"
STATE = "notifier_state"

LINK_CODE_SECONDS = 600
# Codes a person types after /start: no look-alike characters.
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

Db = AsyncIOMotorDatabase[dict[str, Any]]


def prefs_generation_key(topology: Topology) -> str:
    return topology.key("notify", "prefs-gen")


def link_code_key(topology: Topology, code: str) -> str:
    return topology.key("notify", "tg-code", code)


def bot_name_key(topology: Topology) -> str:
    return topology.key("notify", "tg-bot")


def prefs_from_doc(user_id: str, doc: dict[str, Any] | None, email: str = "") -> Preferences:
    doc = doc or {}
    digest = doc.get("digest", DigestChoice.OFF.value)
    return Preferences(
        user_id=user_id,
        defaults={
            k: bool(v)
            for k, v in (doc.get("defaults") or {}).items()
            if k in DeliveryChannel.__members__.values()
        },
        overrides={
            kind: {c: bool(on) for c, on in channels.items()}
            for kind, channels in (doc.get("overrides") or {}).items()
            if kind in EventKind.__members__.values()
        },
        digest=DigestChoice(digest)
        if digest in DigestChoice.__members__.values()
        else DigestChoice.OFF,
        email=email,
        telegram_chat_id=doc.get("telegram_chat_id"),
    )


async def load_preferences(db: Db, user_ids: list[str]) -> dict[str, Preferences]:
    """Every user's preferences and e-mail address, in two queries."""
    docs = {d["_id"]: d async for d in db[PREFS].find({"_id": {"$in": user_ids}})}
    emails = {
        u["_id"]: u.get("email", "")
        async for u in db["users"].find({"_id": {"$in": user_ids}}, {"email": 1})
    }
    return {u: prefs_from_doc(u, docs.get(u), emails.get(u, "")) for u in user_ids}


async def changed(redis: Redis, topology: Topology) -> None:
    """Tell every notifier that some preferences changed (they reload before the next
    batch)."""
    await redis.incr(prefs_generation_key(topology))


async def save_preferences(
    db: Db,
    redis: Redis,
    topology: Topology,
    user_id: str,
    *,
    defaults: dict[str, bool],
    overrides: dict[str, dict[str, bool]],
    digest: str,
) -> None:
    await db[PREFS].update_one(
        {"_id": user_id},
        {"$set": {"defaults": defaults, "overrides": overrides, "digest": digest}},
        upsert=True,
    )
    await changed(redis, topology)


async def set_telegram_chat(
    db: Db, redis: Redis, topology: Topology, user_id: str, chat_id: int | None
) -> None:
    await db[PREFS].update_one(
        {"_id": user_id}, {"$set": {"telegram_chat_id": chat_id}}, upsert=True
    )
    await changed(redis, topology)


async def new_link_code(redis: Redis, topology: Topology, user_id: str) -> str:
    """A one-time code the user sends to the bot as ``/start <code>``; it expires."""
    code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
    await redis.set(link_code_key(topology, code), user_id, ex=LINK_CODE_SECONDS)
    return code
