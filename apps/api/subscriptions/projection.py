"""The Redis routing projection of MongoDB's subscriptions, kept and rebuilt.

Every request that changes a subscription, its broker account or its channel calls one
of the small writers here after the MongoDB write succeeds, so the router's view follows
within the same request. If Redis fails after MongoDB was written, the request fails and
`copier sync-redis` (:func:`rebuild_all`) restores the projection from the source of truth.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from odmantic import AIOEngine, query
from redis.asyncio import Redis

from apps.api.models import BrokerAccount, Channel, Subscription, optional_decimal
from apps.core.credentials import WorkerAccountRecord, pack_account_record
from apps.core.exposure import peak_field
from apps.core.routing import Direction, RoutingRecord, pack_record
from apps.core.topology import Topology


def routing_record(subscription: Subscription, account: BrokerAccount) -> RoutingRecord:
    return RoutingRecord(
        subscription_id=subscription.id,
        channel_id=subscription.channel_id,
        subscriber_id=subscription.subscriber_id,
        broker_kind=account.kind,
        broker_account_id=account.id,
        # A reference, not a secret: the worker loads and opens the sealed credentials.
        credentials_ref=account.id,
        currency=account.currency or "",
        stake_mode=subscription.stake_mode,
        stake=subscription.stake,
        max_stake=subscription.max_stake,
        max_trades_per_day=subscription.max_trades_per_day,
        daily_loss_limit=optional_decimal(subscription.daily_loss_limit),
        assets=tuple(subscription.assets),
        paused=subscription.paused,
        paused_reason=subscription.paused_reason,
        expires_at=int(subscription.expires_at.timestamp()),
        balance_floor=optional_decimal(subscription.balance_floor),
        max_drawdown_percent=optional_decimal(subscription.max_drawdown_percent),
        round_up_to_min_stake=subscription.round_up_to_min_stake,
        directions=directions_of(subscription.directions),
        reverse=subscription.reverse,
    )


def directions_of(stored: list[str]) -> tuple[Direction, ...]:
    """The directions a subscription copies, as the API validated them when it wrote them."""
    return tuple(d for d in ("CALL", "PUT") if d in stored)


async def write_subscription(
    redis: Redis, topology: Topology, subscription: Subscription, account: BrokerAccount
) -> None:
    """Put an active subscription's record in its channel's hash, or take it out."""
    key = topology.routing_key(subscription.channel_id)
    if subscription.status == "active":
        await redis.hset(key, subscription.id, pack_record(routing_record(subscription, account)))
    else:
        await redis.hdel(key, subscription.id)


async def write_subscriptions(
    redis: Redis,
    topology: Topology,
    subscriptions: Iterable[Subscription],
    account: BrokerAccount,
) -> None:
    """One pipeline for all subscriptions of one broker account (verify, delete)."""
    async with redis.pipeline(transaction=False) as pipe:
        for subscription in subscriptions:
            key = topology.routing_key(subscription.channel_id)
            if subscription.status == "active":
                record = pack_record(routing_record(subscription, account))
                pipe.hset(key, subscription.id, record)
            else:
                pipe.hdel(key, subscription.id)
        await pipe.execute()


async def write_broker_account(redis: Redis, topology: Topology, account: BrokerAccount) -> None:
    """Give the broker workers what they need to trade on ``account`` (sealed credentials,
    login, currency, balance type) and the router its balance.

    ``login`` is the broker's id of the account once verified (Deriv's loginid, IQ Option's
    user id); an IQ Option worker logs in with the e-mail sealed in the credentials, which
    it prefers, so the e-mail never sits outside the ciphertext."""
    record = WorkerAccountRecord(
        kind=account.kind,
        ciphertext=account.ciphertext,
        nonce=account.nonce,
        key_id=account.key_id,
        login=account.loginid or "",
        currency=account.currency or "USD",
        balance_type=account.balance_type or "",
    )
    balance = optional_decimal(account.balance)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(topology.broker_account_key(account.id), pack_account_record(record))
        if balance is not None:
            pipe.hset(topology.balances_key(), account.id, str(balance))
        await pipe.execute()


async def drop_broker_account(redis: Redis, topology: Topology, account_id: str) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(topology.broker_account_key(account_id))
        pipe.hdel(topology.balances_key(), account_id, peak_field(account_id))
        await pipe.execute()


async def restart_peak(redis: Redis, topology: Topology, account_id: str) -> None:
    """Measure the account's drawdown from its balance as it is now (the ledger raises
    the peak again with every higher balance)."""
    balance = await redis.hget(topology.balances_key(), account_id)
    if balance is None:
        await redis.hdel(topology.balances_key(), peak_field(account_id))
    else:
        await redis.hset(topology.balances_key(), peak_field(account_id), balance)


async def drop_channel(redis: Redis, topology: Topology, channel_id: str) -> None:
    await redis.delete(topology.routing_key(channel_id))


@dataclass(frozen=True, slots=True)
class RebuildReport:
    channels: int
    subscriptions: int
    stale_keys_removed: int


async def rebuild_all(db: AIOEngine, redis: Redis, topology: Topology) -> RebuildReport:
    """Recompute every channel's routing hash from MongoDB and replace it atomically."""
    channels = {c.id for c in await db.find(Channel, Channel.status == "active")}
    subscriptions = await db.find(Subscription, Subscription.status == "active")
    account_ids = list({s.broker_account_id for s in subscriptions})
    accounts = {
        a.id: a for a in await db.find(BrokerAccount, query.in_(BrokerAccount.id, account_ids))
    }
    by_channel: dict[str, dict[str, bytes]] = defaultdict(dict)
    count = 0
    for subscription in subscriptions:
        account = accounts.get(subscription.broker_account_id)
        if subscription.channel_id not in channels or account is None:
            continue
        record = pack_record(routing_record(subscription, account))
        by_channel[subscription.channel_id][subscription.id] = record
        count += 1

    for channel_id in channels:
        key = topology.routing_key(channel_id)
        fields = by_channel.get(channel_id)
        if not fields:
            await redis.delete(key)
            continue
        # Build aside, then RENAME: the router never sees a half-written hash.
        staging = topology.routing_rebuild_key(channel_id)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(staging)
            pipe.hset(staging, mapping=fields)  # type: ignore[arg-type]
            pipe.rename(staging, key)
            await pipe.execute()

    every_account = await db.find(BrokerAccount)
    for account in every_account:
        await write_broker_account(redis, topology, account)
    known = {a.id for a in every_account}
    record_prefix = topology.broker_account_key("")
    async for raw in redis.scan_iter(match=f"{record_prefix}*", count=500):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        if key[len(record_prefix) :] not in known:
            await drop_broker_account(redis, topology, key[len(record_prefix) :])

    stale = 0
    prefix = topology.routing_key("")
    async for raw in redis.scan_iter(match=f"{prefix}*", count=500):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        if key[len(prefix) :] not in by_channel:
            stale += await redis.delete(key)
    return RebuildReport(len(channels), count, stale)
