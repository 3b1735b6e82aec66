"""The notifier service: EXECUTIONS → each subscriber's notifications, in the dashboard,
by e-mail (SMTP) and on Telegram (the Bot API).

``python -m apps.notifier.main``; any number of instances share the durable `notifier`.

Four loops:
- intake: a fetched batch of executions becomes events (apps.notifier.rules.event_of)
  handled in one go (apps.notifier.dispatch); its messages are acked once the in-app
  notifications, the outbox entries and the digest items are written, so a crash before
  redelivers the batch, and the ids make the repeat change nothing;
- delivery: ``NOTIFY_CONCURRENCY`` workers claim, send and record outbox entries
  (apps.notifier.outbox: what "never twice" rests on, and the one window left);
- digests and the subscription scan: every few seconds, digests whose period is over
  become one message each; every ``NOTIFY_SCAN_SECONDS`` the subscriptions that end within
  ``NOTIFY_ENDING_DAYS`` are told so, once per subscription and period;
- Telegram: the bot's updates, for linking chats (apps.notifier.telegram_link).

E-mail is on when SMTP_HOST is set, Telegram when TELEGRAM_BOT_TOKEN is; without them the
channel is not offered and nothing is queued for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial

import msgspec
from nats.aio.msg import Msg
from redis.asyncio import Redis

from apps.core import metrics
from apps.core.db import connect_db
from apps.core.messages import ExecutionBatch, execution_event_decoder
from apps.core.nats import close_nats, connect_from, ensure_topology, fetched
from apps.core.notifications import DIGEST_ITEMS, INBOX, OUTBOX, Db, DeliveryChannel
from apps.core.redis import connect_redis_from
from apps.core.service import run_service
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.notifier import outbox
from apps.notifier.dispatch import Dispatcher
from apps.notifier.rules import Event, ending_event, event_of
from apps.notifier.senders import SmtpSender, TelegramBot, TelegramSender
from apps.notifier.telegram_link import poll_updates

log = logging.getLogger("notifier")
FETCH_BATCH = 2000
FETCH_WAIT = 1.0
DIGEST_CHECK_SECONDS = 5.0
IDLE_POLL_SECONDS = 2.0  # an idle worker looks for due retries this often
# Within run_service's grace: the sends in progress end and are recorded before exit.
SEND_GRACE_SECONDS = 6.0


Sender = SmtpSender | TelegramSender


def senders_from(settings: Settings) -> tuple[dict[DeliveryChannel, Sender], TelegramBot | None]:
    senders: dict[DeliveryChannel, Sender] = {}
    if settings.smtp_host:
        senders[DeliveryChannel.EMAIL] = SmtpSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            user=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    bot = None
    if settings.telegram_bot_token:
        bot = TelegramBot(settings.telegram_api_url, settings.telegram_bot_token)
        senders[DeliveryChannel.TELEGRAM] = TelegramSender(bot)
    return senders, bot


async def deliver(
    db: Db,
    senders: dict[DeliveryChannel, Sender],
    settings: Settings,
    stop: asyncio.Event,
    wake: asyncio.Event,
    owner: str,
) -> None:
    """One delivery worker: claim, send, record, until ``stop``."""
    while not stop.is_set():
        try:
            entry = await outbox.claim(db, owner, settings.notify_claim_seconds)
        except Exception:
            log.exception("could not read the outbox; trying again")
            entry = None
        if entry is None:
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), IDLE_POLL_SECONDS)
            continue
        sender = senders.get(entry.channel)
        result: outbox.SendResult
        try:
            result = (
                await sender.send(entry)
                if sender is not None
                else outbox.Retry(f"{entry.channel.value} is not configured here")
            )
        except Exception as exc:  # a bug in a sender must not end the worker
            log.exception("sending notification %s failed", entry.id)
            result = outbox.Retry(type(exc).__name__)
        try:
            state = await outbox.record(
                db, entry, owner, result, max_attempts=settings.notify_max_attempts
            )
        except Exception:
            # Unrecorded, the claim lapses and the entry is sent again: the one window
            # apps.notifier.outbox describes.
            log.exception("could not record notification %s", entry.id)
            continue
        metrics.notifications_total.labels(entry.channel.value, state).inc()
        if state != "sent":
            log.warning("notification %s (%s): %s", entry.id, entry.channel.value, state)


async def scan_ending(db: Db, dispatcher: Dispatcher, days: float, now: float) -> int:
    """Tell every active subscription that ends within ``days``; returns how many."""
    start = datetime.fromtimestamp(now, UTC)
    found = [
        s
        async for s in db["subscriptions"].find(
            {"status": "active", "expires_at": {"$gt": start, "$lte": start + timedelta(days=days)}}
        )
    ]
    if not found:
        return 0
    channel_ids = list({s["channel_id"] for s in found})
    names = {
        c["_id"]: c.get("name", "")
        async for c in db["channels"].find({"_id": {"$in": channel_ids}}, {"name": 1})
    }
    events = [
        ending_event(
            user_id=s["subscriber_id"],
            subscription_id=s["_id"],
            channel_name=names.get(s["channel_id"], ""),
            expires_at=_epoch(s["expires_at"]),
            now=now,
        )
        for s in found
    ]
    await dispatcher.handle(events)
    return len(events)


async def purge(db: Db, settings: Settings, now: float) -> int:
    """Forget what is done and old: deliveries sent or failed, digest items flushed, and
    in-app notifications past their days. Pending deliveries are never purged."""
    day = 24 * 3600
    done_before = now - settings.notify_retention_days * day
    removed = 0
    for collection, query in (
        (OUTBOX, {"state": {"$in": ["sent", "failed"]}, "created_at": {"$lt": done_before}}),
        (DIGEST_ITEMS, {"flushed": True, "at": {"$lt": done_before}}),
        (INBOX, {"at": {"$lt": now - settings.notify_inbox_days * day}}),
    ):
        result = await db[collection].delete_many(query)
        removed += result.deleted_count
    return removed


def _epoch(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


async def periodic(db: Db, dispatcher: Dispatcher, settings: Settings, stop: asyncio.Event) -> None:
    """Digests due, every few seconds; the subscriptions ending soon and the purge of old
    notifications, every scan period."""
    next_scan = 0.0
    while not stop.is_set():
        try:
            await dispatcher.flush_digests()
            if time.monotonic() >= next_scan:
                await scan_ending(db, dispatcher, settings.notify_ending_days, time.time())
                await purge(db, settings, time.time())
                next_scan = time.monotonic() + settings.notify_scan_seconds
        except Exception:
            log.exception("digests or the subscription scan failed; trying again")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), DIGEST_CHECK_SECONDS)


async def ensure_indexes(db: Db) -> None:
    await db[INBOX].create_index([("user_id", 1), ("at", -1)])
    await db[OUTBOX].create_index([("state", 1), ("next_at", 1)])
    await db[DIGEST_ITEMS].create_index([("flushed", 1), ("due_at", 1)])


def events_of(msgs: list[Msg]) -> list[Event]:
    events = []
    for msg in msgs:
        try:
            decoded = execution_event_decoder.decode(msg.data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            continue  # the ledger terminates it; nothing here to notify
        if isinstance(decoded, ExecutionBatch):
            events += [e for e in map(event_of, decoded.executions) if e is not None]
    return events


async def run(settings: Settings, stop: asyncio.Event) -> None:
    topology = Topology(settings.namespace)
    nc = await connect_from(settings, "copier-notifier")
    await ensure_topology(nc, topology, replicas=settings.nats_replicas)
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    db: Db = mongo[settings.mongodb_database]
    redis: Redis = connect_redis_from(settings)
    try:
        await ensure_indexes(db)
    except Exception:
        log.warning("could not create the notifications' indexes", exc_info=True)
    senders, bot = senders_from(settings)
    wake = asyncio.Event()
    dispatcher = Dispatcher(
        db,
        redis,
        topology,
        available=frozenset({DeliveryChannel.IN_APP, *senders}),
        rate_per_minute=settings.notify_rate_per_minute,
        overflow_digest_seconds=settings.notify_overflow_digest_seconds,
        wake=wake,
    )
    owner = str(uuid.uuid4())  # this incarnation's claims: a restart never records another's
    tasks = [
        asyncio.create_task(deliver(db, senders, settings, stop, wake, owner))
        for _ in range(settings.notify_concurrency)
    ]
    tasks.append(asyncio.create_task(periodic(db, dispatcher, settings, stop)))
    if bot is not None:
        tasks.append(asyncio.create_task(poll_updates(bot, db, redis, topology, stop, wake)))
    js = nc.jetstream()
    sub = await js.pull_subscribe_bind("notifier", topology.stream("EXECUTIONS"))
    watching = metrics.watch_jetstream_soon(
        settings.metrics_enabled, js, [(topology.stream("EXECUTIONS"), "notifier")]
    )
    try:
        while not stop.is_set():
            msgs = await fetched(partial(sub.fetch, FETCH_BATCH, timeout=FETCH_WAIT), FETCH_WAIT)
            if not msgs:
                continue
            try:
                await dispatcher.handle(events_of(msgs))
            except Exception:
                log.exception("could not handle %d messages; they will be redelivered", len(msgs))
                await asyncio.gather(*(m.nak(delay=1) for m in msgs), return_exceptions=True)
                continue
            await asyncio.gather(*(m.ack() for m in msgs), return_exceptions=True)
    finally:
        stop.set()
        await metrics.stop_watching(watching)
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        # A send in progress finishes and is recorded: cut off, it would be sent again.
        await asyncio.wait(tasks, timeout=SEND_GRACE_SECONDS)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if bot is not None:
            await bot.aclose()
        await close_nats(nc)
        await redis.aclose()
        mongo.close()


def main() -> None:
    run_service("notifier", run)


if __name__ == "__main__":
    main()
