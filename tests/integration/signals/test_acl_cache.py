"""Signal intake reads who may signal a channel from a Redis copy of its ACL; a change is
written through, so a signal that read the old channel cannot bring the old ACL back."""

from __future__ import annotations

from nats.aio.client import Client as NATS

from apps.api.auth.principals import Authenticator
from apps.api.auth.tokens import token_service_from_settings
from apps.api.models import Channel
from apps.api.signals.service import SignalIntake, acl_key
from apps.core.db import connect_db
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.live_api import Http
from tests.integration.signals.test_signal_intake import SIGNAL


async def test_a_stale_fill_cannot_restore_a_removed_delegate(
    http: Http, nc: NATS, settings: Settings
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
        await redis.delete(acl_key(topology, channel_id))  # as if the entry had expired
        await http.ok("DELETE", f"/api/v1/channels/{channel_id}/delegates/{trader.id}", owner)
        # A signal that read the channel before the removal fills the cache afterwards.
        # (Here: the old document is put back, so that the fill reads it.)
        channel = await db.find_one(Channel, Channel.id == channel_id)
        assert channel is not None
        channel.delegates.append(trader.id)
        await db.save(channel)
        intake = SignalIntake(
            settings,
            topology,
            nc,
            redis,
            db,
            Authenticator(token_service_from_settings(settings), db, redis, topology),
        )
        acl = await intake.acl_from(channel_id, None)
        assert acl is not None and trader.id not in acl.delegates
    finally:
        await redis.aclose()
        mongo.close()
    assert (await http.call("POST", path, trader, json=SIGNAL)).status_code == 403
