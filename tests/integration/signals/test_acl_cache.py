"""Signal intake reads who may signal a channel from a Redis copy of its ACL; a change is
written through, so a signal that read the old channel cannot bring the old ACL back."""

from __future__ import annotations

import time

import msgspec
from nats.aio.client import Client as NATS
from odmantic import AIOEngine
from redis.asyncio import Redis

from apps.api.auth.principals import Authenticator
from apps.api.auth.tokens import token_service_from_settings
from apps.api.models import Channel
from apps.api.signals.service import ACL_TTL_SECONDS, ChannelAcl, SignalIntake
from apps.core.db import connect_db
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.live_api import Api
from tests.fixtures.waiting import wait_for
from tests.integration.signals.test_signal_intake import SIGNAL


async def test_a_stale_fill_cannot_restore_a_removed_delegate(
    http: Api, nc: NATS, settings: Settings
) -> None:
    owner = await http.user("provider", "owner")
    trader = await http.user("provider", "trader")
    channel_id = await http.channel(owner)
    await http.delegate(owner, channel_id, trader)
    path = f"/api/v1/channels/{channel_id}/signals"
    assert (await http.call("POST", path, trader, json=SIGNAL)).status_code == 202

    mongo, db = connect_db(settings.mongodb_uri, settings.mongodb_database)
    redis = connect_redis(settings.redis_url)
    topology = Topology(settings.namespace)
    try:
        await redis.delete(topology.channel_acl_key(channel_id))  # as if the entry had expired
        await http.ok("DELETE", f"/api/v1/channels/{channel_id}/delegates/{trader.id}", owner)
        # A signal that read the channel before the removal fills the cache afterwards.
        # (Here: the old document is put back, so that the fill reads it.)
        channel = await db.find_one(Channel, Channel.id == channel_id)
        assert channel is not None
        channel.delegates.append(trader.id)
        await db.save(channel)
        intake = _intake(settings, nc, redis, db, topology)
        acl = await intake.acl_from(channel_id, None)
        assert acl is not None and trader.id not in acl.delegates
    finally:
        await redis.aclose()
        mongo.close()
    assert (await http.call("POST", path, trader, json=SIGNAL)).status_code == 403


async def test_an_old_acl_is_used_and_read_again_behind_the_signal(
    http: Api, nc: NATS, settings: Settings
) -> None:
    """An ACL entry past two thirds of its TTL still decides the signal (no MongoDB read
    on the way) and is replaced in the background by the channel as it is now; a channel
    gone from MongoDB loses its entry."""
    owner = await http.user("provider", "owner")
    trader = await http.user("provider", "trader")
    channel_id = await http.channel(owner)
    mongo, db = connect_db(settings.mongodb_uri, settings.mongodb_database)
    redis = connect_redis(settings.redis_url)
    topology = Topology(settings.namespace)
    key = topology.channel_acl_key(channel_id)
    intake = _intake(settings, nc, redis, db, topology)

    async def with_trader() -> ChannelAcl | None:
        raw = await redis.get(key)
        acl = None if raw is None else msgspec.msgpack.decode(raw, type=ChannelAcl)
        return acl if acl is not None and trader.id in acl.delegates else None

    async def gone() -> bool:
        return not await redis.exists(key)

    try:
        old = ChannelAcl(owner.id, [], True, time.time() - ACL_TTL_SECONDS * 0.7)
        await redis.set(key, msgspec.msgpack.encode(old), ex=60)
        channel = await db.find_one(Channel, Channel.id == channel_id)
        assert channel is not None
        channel.delegates.append(trader.id)  # by hand, past channel_acl_changed
        await db.save(channel)

        seen = await intake.acl_from(channel_id, await redis.get(key))
        assert seen == old  # what the cache said
        fresh = await wait_for(with_trader, what="the entry read again, with the delegate")
        assert fresh.read_at > old.read_at
        assert await redis.ttl(key) > 60

        await db.delete(channel)
        await redis.set(key, msgspec.msgpack.encode(old), ex=60)
        assert await intake.acl_from(channel_id, await redis.get(key)) == old
        await wait_for(gone, what="the deleted channel's entry gone")
        assert await intake.acl_from(channel_id, None) is None
    finally:
        await redis.aclose()
        mongo.close()


def _intake(
    settings: Settings, nc: NATS, redis: Redis, db: AIOEngine, topology: Topology
) -> SignalIntake:
    authenticator = Authenticator(token_service_from_settings(settings), db, redis, topology)
    return SignalIntake(settings, topology, nc, redis, db, authenticator)
