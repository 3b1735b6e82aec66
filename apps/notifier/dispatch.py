"""From events to notifications: one batch at a time, in a fixed number of round trips
whatever its size (a 10,000-subscriber signal is one batch of 10,000 events, not 10,000
lookups).

Per batch: the users' preferences (from the cache, the missing ones in two queries); the
in-app notifications, inserted by id; for e-mail and Telegram, the ids already enqueued
or gathered are skipped (a redelivered batch repeats no decision), each remaining
delivery is counted against its user's per-minute budget on that channel (one Redis
pipeline), and goes to the outbox now or to a digest (apps.notifier.rules.delivery_for).

Guarantees: processing a batch again after a crash at any step produces nothing twice
(every write is keyed by the notification id); a digest gathers every event of its period
and is sent once per (user, channel, period) (its id is derived from them), from the
items written before it was flushed; a later straggler for a period already flushed goes
into the next flush under the same id and is therefore not sent (it stays in the in-app
list).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

from pymongo.errors import BulkWriteError
from redis.asyncio import Redis

from apps.core.notifications import (
    DIGEST_ITEMS,
    INBOX,
    OUTBOX,
    Db,
    DeliveryChannel,
    Preferences,
    load_preferences,
)
from apps.core.topology import Topology
from apps.notifier import outbox
from apps.notifier.rules import (
    Digest,
    Event,
    Immediate,
    channels_for,
    delivery_for,
    digest_id,
    digest_text,
    notification_id,
)

log = logging.getLogger("notifier")


class PrefsCache:
    """Preferences by user, dropped whole whenever anyone's change (the API bumps a
    generation counter in Redis, read once per batch)."""

    def __init__(self, db: Db, redis: Redis, topology: Topology, max_size: int = 100_000):
        self.db = db
        self.redis = redis
        self.topology = topology
        self.max_size = max_size
        self._prefs: dict[str, Preferences] = {}
        self._generation: bytes | str | None = None

    async def get_many(self, user_ids: set[str]) -> dict[str, Preferences]:
        generation = await self.redis.get(self.topology.notify_prefs_generation_key())
        if generation != self._generation or len(self._prefs) > self.max_size:
            self._prefs.clear()
            self._generation = generation
        missing = [u for u in user_ids if u not in self._prefs]
        if missing:
            self._prefs.update(await load_preferences(self.db, missing))
        return {u: self._prefs[u] for u in user_ids}


async def insert_new(db: Db, collection: str, docs: list[dict[str, Any]]) -> None:
    """Insert documents by ``_id``; those already there are left as they are."""
    if not docs:
        return
    try:
        await db[collection].insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
            raise


class Dispatcher:
    def __init__(
        self,
        db: Db,
        redis: Redis,
        topology: Topology,
        *,
        available: frozenset[DeliveryChannel],
        rate_per_minute: int,
        overflow_digest_seconds: int,
        wake: asyncio.Event | None = None,
    ) -> None:
        self.db = db
        self.redis = redis
        self.topology = topology
        self.available = available
        self.rate_per_minute = rate_per_minute
        self.overflow_digest_seconds = overflow_digest_seconds
        self.prefs = PrefsCache(db, redis, topology)
        self.wake = wake or asyncio.Event()

    async def handle(self, events: list[Event]) -> None:
        if not events:
            return
        prefs = await self.prefs.get_many({e.user_id for e in events})
        inbox: list[dict[str, Any]] = []
        external: list[tuple[str, Event, DeliveryChannel, str]] = []
        for event in events:
            for channel, to in channels_for(prefs[event.user_id], event.kind, self.available):
                nid = notification_id(event.key, event.user_id, channel)
                if channel is DeliveryChannel.IN_APP:
                    inbox.append(_inbox_doc(nid, event))
                else:
                    external.append((nid, event, channel, to))
        await insert_new(self.db, INBOX, inbox)
        if not external:
            return
        ids = [nid for nid, *_ in external]
        seen = {d["_id"] async for d in self.db[OUTBOX].find({"_id": {"$in": ids}}, {"_id": 1})}
        seen |= {
            d["_id"] async for d in self.db[DIGEST_ITEMS].find({"_id": {"$in": ids}}, {"_id": 1})
        }
        fresh = [x for x in external if x[0] not in seen]
        counts = await self._count(fresh)
        entries: list[outbox.Entry] = []
        items: list[dict[str, Any]] = []
        for (nid, event, channel, to), count in zip(fresh, counts, strict=True):
            decision = delivery_for(
                prefs[event.user_id].digest,
                sent_this_minute=count,
                limit=self.rate_per_minute,
                at=event.at,
                overflow_seconds=self.overflow_digest_seconds,
            )
            match decision:
                case Immediate():
                    entries.append(
                        outbox.Entry(
                            id=nid,
                            user_id=event.user_id,
                            channel=channel,
                            to=to,
                            subject=event.title,
                            text=event.body,
                        )
                    )
                case Digest():
                    items.append(_digest_item(nid, event, channel, to, decision))
        await insert_new(self.db, DIGEST_ITEMS, items)
        if await outbox.enqueue(self.db, entries):
            self.wake.set()

    async def _count(self, fresh: list[tuple[str, Event, DeliveryChannel, str]]) -> list[int]:
        """Each delivery's place in its user's minute on its channel (1 = the first)."""
        if not fresh:
            return []
        minute = int(time.time() // 60)
        pipe = self.redis.pipeline(transaction=False)
        for _, event, channel, _ in fresh:
            key = self.topology.notify_rate_key(event.user_id, channel.value, minute)
            pipe.incr(key)
            pipe.expire(key, 120)
        replies = await pipe.execute()
        return [int(r) for r in replies[0::2]]

    async def flush_digests(self, now: float | None = None) -> int:
        """Turn every digest whose period is over into one outbox entry; returns how many."""
        at = time.time() if now is None else now
        groups: dict[tuple[str, str, str, int, int], list[dict[str, Any]]] = defaultdict(list)
        async for item in self.db[DIGEST_ITEMS].find({"flushed": False, "due_at": {"$lte": at}}):
            key = (
                item["user_id"],
                item["channel"],
                item["to"],
                int(item["period_start"]),
                int(item["period_seconds"]),
            )
            groups[key].append(item)
        entries = []
        for (user_id, channel, to, start, seconds), rows in groups.items():
            rows.sort(key=lambda r: r["at"])
            subject, text = digest_text([r["line"] for r in rows], len(rows))
            entries.append(
                outbox.Entry(
                    id=digest_id(user_id, DeliveryChannel(channel), Digest(start, seconds)),
                    user_id=user_id,
                    channel=DeliveryChannel(channel),
                    to=to,
                    subject=subject,
                    text=text,
                )
            )
        if not entries:
            return 0
        await outbox.enqueue(self.db, entries)
        ids = [r["_id"] for rows in groups.values() for r in rows]
        await self.db[DIGEST_ITEMS].update_many({"_id": {"$in": ids}}, {"$set": {"flushed": True}})
        self.wake.set()
        return len(entries)


def _inbox_doc(nid: str, event: Event) -> dict[str, Any]:
    return {
        "_id": nid,
        "user_id": event.user_id,
        "kind": event.kind.value,
        "title": event.title,
        "body": event.body,
        "at": event.at,
        "read": False,
        "order_id": event.order_id,
        "subscription_id": event.subscription_id,
    }


def _digest_item(
    nid: str, event: Event, channel: DeliveryChannel, to: str, period: Digest
) -> dict[str, Any]:
    return {
        "_id": nid,
        "user_id": event.user_id,
        "channel": channel.value,
        "to": to,
        "period_start": period.period_start,
        "period_seconds": period.period_seconds,
        "due_at": period.due_at,
        "at": event.at,
        "line": event.title,
        "flushed": False,
    }
