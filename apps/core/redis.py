"""The Redis (valkey) connection used on the signal path."""

from __future__ import annotations

import redis.asyncio as redis


def connect_redis(url: str) -> redis.Redis:
    """A pooled client; bytes in and out (values are msgspec-packed, not text).

    A command that finds every connection busy waits for one (a whole fan-out taken over
    at once issues a thousand reads together) instead of failing at once."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        decode_responses=False,
        socket_connect_timeout=2,
        health_check_interval=30,
        max_connections=256,
        timeout=10,
    )
    return redis.Redis.from_pool(pool)
