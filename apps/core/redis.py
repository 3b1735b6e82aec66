"""The Redis (valkey) connection every service uses.

A command that meets a dead pooled socket or a refused connection (Valkey restarting)
is retried on a fresh connection with exponential backoff: for several seconds in the
services, long enough for `copier up` to restart a killed Valkey, so they ride out a
restart without failing the work in hand; for about a second in the API, where a person
waits and an outage is better told at once (a 503 with Retry-After).
"""

from __future__ import annotations

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError

# Waits of 0.05 s doubling to 1 s, each at least half its nominal length (the jitter
# keeps a crowd of clients from reconnecting in step): about 5 to 10 s in all.
RETRIES = 12
# The API's: 0.05 + 0.1 + 0.2 + 0.4 s nominal, under a second in all.
REQUEST_RETRIES = 4
BACKOFF_BASE = 0.05
BACKOFF_CAP = 1.0


def reconnecting_retry(retries: int = RETRIES) -> Retry:
    """Retry on ConnectionError and TimeoutError only: without ``socket_timeout`` a
    TimeoutError can only come from connecting, so no command the server may have run
    is sent twice because it was slow (one cut off by the server's death after it was
    written is sent again, as with redis-py's own default retry)."""
    return Retry(
        EqualJitterBackoff(cap=BACKOFF_CAP, base=BACKOFF_BASE),
        retries,
        supported_errors=(ConnectionError, TimeoutError),
    )


def connect_redis(url: str, *, retries: int = RETRIES) -> redis.Redis:
    """A pooled client; bytes in and out (values are msgspec-packed, not text).

    A command that finds every connection busy waits for one (a whole fan-out taken over
    at once issues a thousand reads together) instead of failing at once."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        decode_responses=False,
        socket_connect_timeout=2,
        retry=reconnecting_retry(retries),
        # A connection idle this long is pinged before use, so a socket the server
        # dropped meanwhile is replaced before a command is written to it.
        health_check_interval=15,
        max_connections=256,
        timeout=10,
    )
    return redis.Redis.from_pool(pool)
