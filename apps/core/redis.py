"""The Redis (valkey) connection used on the signal path."""

from __future__ import annotations

import redis.asyncio as redis


def connect_redis(url: str) -> redis.Redis:
    """A pooled client; bytes in and out (values are msgspec-packed, not text)."""
    return redis.Redis.from_url(
        url,
        decode_responses=False,
        socket_connect_timeout=2,
        health_check_interval=30,
        max_connections=256,
    )
