"""The outbox: every e-mail and Telegram message, written before it is sent, delivered
by a claim → send → record protocol in MongoDB.

An entry's ``_id`` is its notification id (apps.notifier.rules.notification_id: one per
event, user and channel), so producing it again — a redelivered execution, a repeated
scan, a restarted notifier — inserts nothing: an event is enqueued once.

Delivery of one entry:
1. claim: one atomic ``find_one_and_update`` moves it from ``pending`` (due) — or from
   ``sending`` whose claim has lapsed (its notifier died) — to ``sending`` with a claim
   that lapses ``claim_seconds`` later; two notifiers never hold one entry at once;
2. send it (SMTP / the Bot API);
3. record: ``sent`` (never claimed again); a failure the server calls temporary, or no
   answer, puts it back to ``pending`` with a backoff (Telegram's ``retry_after`` when it
   says one); one it calls permanent, or the last attempt, marks it ``failed``.

What "never twice" rests on: an entry leaves ``pending`` only by the atomic claim, and a
sent entry is recorded before its claim could lapse (the claim outlasts the send's own
timeout). The one window left is a notifier that dies after the server took the message
and before step 3 wrote ``sent``: the claim lapses and the message is sent again. For
e-mail that copy carries the same ``Message-ID`` (derived from the id), which mail stores
and clients use to drop duplicates; the Bot API has no such key, so a Telegram message
can, in that window alone, arrive twice. Closing it would need the receiving server to
de-duplicate, which neither protocol offers; losing the message instead (never resending
an entry whose claim lapsed) was judged worse.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError

from apps.core.notifications import OUTBOX, Db, DeliveryChannel
from apps.notifier.rules import backoff_seconds


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    user_id: str
    channel: DeliveryChannel
    to: str  # an e-mail address or a Telegram chat id
    subject: str
    text: str
    attempts: int = 0


class Sent(msgspec.Struct, frozen=True):
    pass


class Retry(msgspec.Struct, frozen=True):
    error: str
    after: float | None = None  # seconds the server asked for, if it did


class Permanent(msgspec.Struct, frozen=True):
    error: str


SendResult = Sent | Retry | Permanent


async def enqueue(db: Db, entries: list[Entry], *, now: float | None = None) -> int:
    """Write entries not yet there; an id already present is left as it is. Returns how
    many were new."""
    if not entries:
        return 0
    at = time.time() if now is None else now
    docs = [
        {
            "_id": e.id,
            "user_id": e.user_id,
            "channel": e.channel.value,
            "to": e.to,
            "subject": e.subject,
            "text": e.text,
            "state": "pending",
            "attempts": 0,
            "next_at": at,
            "claim_until": 0.0,
            "created_at": at,
        }
        for e in entries
    ]
    try:
        result = await db[OUTBOX].insert_many(docs, ordered=False)
        return len(result.inserted_ids)
    except BulkWriteError as exc:
        others = [e for e in exc.details.get("writeErrors", []) if e.get("code") != 11000]
        if others:
            raise
        return int(exc.details.get("nInserted", 0))


async def claim(db: Db, owner: str, claim_seconds: float) -> Entry | None:
    """The next due entry, now held by ``owner`` until its claim lapses; None if none."""
    now = time.time()
    doc = await db[OUTBOX].find_one_and_update(
        {
            "$or": [
                {"state": "pending", "next_at": {"$lte": now}},
                {"state": "sending", "claim_until": {"$lt": now}},
            ]
        },
        {
            "$set": {"state": "sending", "claim_until": now + claim_seconds, "owner": owner},
            "$inc": {"attempts": 1},
        },
        sort=[("next_at", 1)],
        return_document=ReturnDocument.AFTER,
    )
    return None if doc is None else _entry(doc)


async def record(db: Db, entry: Entry, owner: str, result: SendResult, *, max_attempts: int) -> str:
    """Write what the send came to; returns the entry's new state. Only the claim's
    holder records (a notifier whose claim lapsed and was taken over writes nothing)."""
    now = time.time()
    update: dict[str, Any]
    match result:
        case Sent():
            update = {"state": "sent", "sent_at": now, "error": ""}
        case Retry(error=error, after=after) if entry.attempts < max_attempts:
            wait = after if after is not None else backoff_seconds(entry.attempts)
            update = {"state": "pending", "next_at": now + wait, "error": error}
        case Retry(error=error) | Permanent(error=error):
            update = {"state": "failed", "error": error, "failed_at": now}
    await db[OUTBOX].update_one(
        {"_id": entry.id, "state": "sending", "owner": owner}, {"$set": update}
    )
    return str(update["state"])


def _entry(doc: dict[str, Any]) -> Entry:
    return Entry(
        id=doc["_id"],
        user_id=doc["user_id"],
        channel=DeliveryChannel(doc["channel"]),
        to=doc["to"],
        subject=doc["subject"],
        text=doc["text"],
        attempts=int(doc.get("attempts", 0)),
    )
