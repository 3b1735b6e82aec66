"""The caller's notifications: preferences (event kind by delivery channel, with the
user's defaults and digest choice), the in-app list with its unread count, and linking a
Telegram chat through a one-time code sent to the bot as ``/start <code>``.

Every change of preferences or of the linked chat bumps the notifier's cache generation
(apps.notifier.store.changed), so the next batch it handles uses it.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec
from litestar import Router, delete, get, post, put
from litestar.params import JSONBody, Parameter
from litestar.status_codes import HTTP_201_CREATED

from apps.api.dependencies import CurrentUser, Infra
from apps.api.openapi import errors
from apps.core import notifications as store
from apps.core.notifications import (
    BUILTIN_DEFAULTS,
    DeliveryChannel,
    DigestChoice,
    EventKind,
    channel_on,
)


class PreferencesBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the user chooses: each channel's default, per-kind overrides, the digest."""

    defaults: dict[DeliveryChannel, bool] = msgspec.field(default_factory=dict)
    overrides: dict[EventKind, dict[DeliveryChannel, bool]] = msgspec.field(default_factory=dict)
    digest: DigestChoice = DigestChoice.OFF


class PreferencesView(msgspec.Struct, kw_only=True):
    defaults: dict[str, bool]
    overrides: dict[str, dict[str, bool]]
    # kind → channel → on, as the notifier resolves it (override, else default).
    effective: dict[str, dict[str, bool]]
    digest: str
    kinds: list[str]
    channels: list[str]
    email: str
    telegram_linked: bool
    telegram_bot: str  # the bot's username, "" until the notifier has met it


class NotificationView(msgspec.Struct, kw_only=True):
    id: str
    kind: str
    title: str
    body: str
    at: float
    read: bool
    order_id: str = ""
    subscription_id: str = ""


class NotificationList(msgspec.Struct, kw_only=True):
    items: list[NotificationView]
    unread: int


class MarkRead(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Ids to mark read; empty: every notification of the caller."""

    ids: list[str] = msgspec.field(default_factory=list)


class LinkCode(msgspec.Struct, kw_only=True):
    code: str
    expires_at: float
    bot: str
    url: str  # opens the bot with the code filled in ("" until the bot is known)
    command: str


def _db(infra: Any) -> store.Db:
    return infra.mongo[infra.settings.mongodb_database]  # type: ignore[no-any-return]


async def _bot_name(infra: Any) -> str:
    name = await infra.redis.get(infra.topology.telegram_bot_name_key())
    return name.decode() if isinstance(name, bytes) else (name or "")


async def _view(infra: Any, user_id: str) -> PreferencesView:
    db = _db(infra)
    doc = await db[store.PREFS].find_one({"_id": user_id})
    user = await db["users"].find_one({"_id": user_id}, {"email": 1})
    prefs = store.prefs_from_doc(user_id, doc, (user or {}).get("email", ""))
    bot = await _bot_name(infra)
    return PreferencesView(
        defaults={
            c.value: prefs.defaults.get(c.value, BUILTIN_DEFAULTS[c]) for c in DeliveryChannel
        },
        overrides=prefs.overrides,
        effective={
            k.value: {c.value: channel_on(prefs, k, c) for c in DeliveryChannel} for k in EventKind
        },
        digest=prefs.digest.value,
        kinds=[k.value for k in EventKind],
        channels=[c.value for c in DeliveryChannel],
        email=prefs.email,
        telegram_linked=prefs.telegram_chat_id is not None,
        telegram_bot=bot,
    )


@get("/me/notifications/preferences")
async def get_preferences(principal: CurrentUser, infra: Infra) -> PreferencesView:
    """The caller's choices and how they resolve for each event kind and channel."""
    return await _view(infra, principal.id)


@put("/me/notifications/preferences", responses=errors(400))
async def put_preferences(
    data: JSONBody[PreferencesBody], principal: CurrentUser, infra: Infra
) -> PreferencesView:
    """Replace the caller's choices (defaults per channel, overrides per kind and channel,
    digest: off, hourly or daily)."""
    await store.save_preferences(
        _db(infra),
        infra.redis,
        infra.topology,
        principal.id,
        defaults={c.value: on for c, on in data.defaults.items()},
        overrides={
            k.value: {c.value: on for c, on in channels.items()}
            for k, channels in data.overrides.items()
            if channels
        },
        digest=data.digest.value,
    )
    return await _view(infra, principal.id)


@get("/me/notifications")
async def list_notifications(
    principal: CurrentUser,
    infra: Infra,
    limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    unread_only: bool = False,
) -> NotificationList:
    """The caller's in-app notifications, newest first, and how many are unread."""
    db = _db(infra)
    query: dict[str, Any] = {"user_id": principal.id}
    if unread_only:
        query["read"] = False
    docs = await db[store.INBOX].find(query).sort([("at", -1)]).limit(limit).to_list(None)
    unread = await db[store.INBOX].count_documents({"user_id": principal.id, "read": False})
    return NotificationList(
        items=[
            NotificationView(
                id=d["_id"],
                kind=d.get("kind", ""),
                title=d.get("title", ""),
                body=d.get("body", ""),
                at=float(d.get("at", 0)),
                read=bool(d.get("read")),
                order_id=d.get("order_id", ""),
                subscription_id=d.get("subscription_id", ""),
            )
            for d in docs
        ],
        unread=unread,
    )


@post("/me/notifications/read", status_code=200)
async def mark_read(
    data: JSONBody[MarkRead], principal: CurrentUser, infra: Infra
) -> dict[str, int]:
    """Mark the given notifications (or all of them) read; returns the unread count."""
    db = _db(infra)
    query: dict[str, Any] = {"user_id": principal.id, "read": False}
    if data.ids:
        query["_id"] = {"$in": data.ids[:500]}
    await db[store.INBOX].update_many(query, {"$set": {"read": True}})
    unread = await db[store.INBOX].count_documents({"user_id": principal.id, "read": False})
    return {"unread": unread}


@post("/me/notifications/telegram/link", status_code=HTTP_201_CREATED)
async def telegram_link(principal: CurrentUser, infra: Infra) -> LinkCode:
    """A one-time code, valid for ten minutes: send ``/start <code>`` to the bot."""
    code = await store.new_link_code(infra.redis, infra.topology, principal.id)
    name = await _bot_name(infra)
    return LinkCode(
        code=code,
        expires_at=time.time() + store.LINK_CODE_SECONDS,
        bot=name,
        url=f"https://t.me/{name}?start={code}" if name else "",
        command=f"/start {code}",
    )


@delete("/me/notifications/telegram", status_code=204)
async def telegram_unlink(principal: CurrentUser, infra: Infra) -> None:
    """Stop Telegram notifications: forget the linked chat."""
    await store.set_telegram_chat(_db(infra), infra.redis, infra.topology, principal.id, None)


notification_router = Router(
    path="/api/v1",
    route_handlers=[
        get_preferences,
        put_preferences,
        list_notifications,
        mark_read,
        telegram_link,
        telegram_unlink,
    ],
    tags=["notifications"],
)
