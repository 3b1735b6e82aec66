"""Fixed-window attempt counters in Redis, shared by every API instance."""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

from apps.api.errors import TooManyRequests
from apps.core.topology import Topology

WINDOW_SECONDS = 60


def _account_key(email: str) -> str:
    # Hashed so Redis keys (and `redis-cli --scan` output) carry no e-mail addresses.
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


async def hit(redis: Redis, key: str, limit: int) -> None:
    """Count one attempt under ``key``; raise 429 once the window's budget is spent."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        # NX: only the first hit of a window sets its end, later hits do not extend it.
        pipe.expire(key, WINDOW_SECONDS, nx=True)
        pipe.ttl(key)
        count, _, ttl = await pipe.execute()
    if int(count) > limit:
        retry = max(int(ttl), 1)
        raise TooManyRequests(
            "too many attempts, try again later",
            details={"retry_after_seconds": retry},
            headers={"Retry-After": str(retry)},
        )


async def limit_auth_attempt(
    redis: Redis,
    topology: Topology,
    action: str,
    client: str,
    email: str,
    *,
    per_ip: int,
    per_account: int,
) -> None:
    await hit(redis, topology.ip_attempts_key(action, client), per_ip)
    await hit(redis, topology.account_attempts_key(action, _account_key(email)), per_account)
