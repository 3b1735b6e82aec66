"""Notifications' shared vocabulary and storage, for the notifier (apps.notifier) and the
API (apps.api.notifications): event kinds, delivery channels, a user's preferences and
how they resolve, and where they live.

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
from enum import StrEnum
from typing import Any

import msgspec
from motor.motor_asyncio import AsyncIOMotorDatabase
from redis.asyncio import Redis

from apps.core.topology import Topology

PREFS = "notification_prefs"
INBOX = "notifications"
OUTBOX = "notification_outbox"
DIGEST_ITEMS = "notification_digest_items"
STATE = "notifier_state"

LINK_CODE_SECONDS = 600
# Codes a person types after /start: no look-alike characters.
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

Db = AsyncIOMotorDatabase[dict[str, Any]]


class EventKind(StrEnum):
    PLACED = "placed"
    REJECTED = "rejected"
    WON = "won"
    LOST = "lost"
    PAUSED = "paused"
    ENDING = "ending"


class DeliveryChannel(StrEnum):
    IN_APP = "in_app"
    EMAIL = "email"
    TELEGRAM = "telegram"


class DigestChoice(StrEnum):
    OFF = "off"  # each event on its own (digested only over the rate limit)
    HOURLY = "hourly"
    DAILY = "daily"


DIGEST_SECONDS = {DigestChoice.HOURLY: 3600, DigestChoice.DAILY: 86400}

BUILTIN_DEFAULTS = {
    DeliveryChannel.IN_APP: True,
    DeliveryChannel.EMAIL: False,
    DeliveryChannel.TELEGRAM: False,
}


class Preferences(msgspec.Struct, frozen=True, kw_only=True):
    """One user's choices; a user who never chose has ``Preferences(user_id=...)``."""

    user_id: str
    # channel → on/off; a channel missing here takes BUILTIN_DEFAULTS.
    defaults: dict[str, bool] = msgspec.field(default_factory=dict)
    # kind → channel → on/off, over the defaults.
    overrides: dict[str, dict[str, bool]] = msgspec.field(default_factory=dict)
    digest: DigestChoice = DigestChoice.OFF
    email: str = ""  # the account's address (users collection), read with the choices
    telegram_chat_id: int | None = None


def channel_on(prefs: Preferences, kind: EventKind, channel: DeliveryChannel) -> bool:
    """Whether the user wants ``kind`` on ``channel``: override, default, built-in."""
    override = prefs.overrides.get(kind.value, {}).get(channel.value)
    if override is not None:
        return override
    return prefs.defaults.get(channel.value, BUILTIN_DEFAULTS[channel])


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
    await redis.incr(topology.notify_prefs_generation_key())


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
    await redis.set(topology.telegram_link_code_key(code), user_id, ex=LINK_CODE_SECONDS)
    return code
