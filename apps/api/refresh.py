"""Cache entries read again from MongoDB before they expire, off the request path.

The API answers signal intake and authentication from Redis copies of MongoDB facts (the
user's role, a channel's ACL), each with a TTL that bounds how stale a change made behind
the code's back may be. A request that finds its entry missing reads MongoDB while it
waits. That read costs a few ms on an idle machine, but hundreds of ms while a large
fan-out keeps the CPUs busy (measured: 92-329 ms for one ``find_one`` against the
embedded MongoDB during a 10,000-order fan-out), and every entry expires every TTL.

So an entry older than a part of its TTL is still served, and one background task per
key reads its source again and replaces it. The replacement is a compare-and-set on the
bytes the request saw: a write-through made meanwhile (``user_changed``,
``channel_acl_changed``) is fresher by definition and is never overwritten. The
staleness bound stays the TTL: whatever a refresh wrote was read from MongoDB just before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

log = logging.getLogger("api.refresh")

# An entry is refreshed once it is older than this part of its TTL.
REFRESH_AT = 2 / 3

# KEYS: the entry. ARGV: the bytes seen, the new bytes ('' = delete), the TTL.
_REPLACE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return 1
"""


def is_due(read_at: float, ttl: float) -> bool:
    """Whether an entry read from MongoDB at ``read_at`` (epoch s) should be refreshed."""
    return time.time() - read_at >= ttl * REFRESH_AT


class RefreshAhead:
    """Background refreshes of cache entries, at most one running per key."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._replace: AsyncScript | None = None  # registered on first use
        self._running: dict[str, asyncio.Task[bool]] = {}

    def refresh(
        self, key: str, seen: bytes, load: Callable[[], Awaitable[bytes | None]], ttl: int
    ) -> asyncio.Task[bool]:
        """Start replacing ``key`` (still holding ``seen``) by what ``load`` reads now;
        ``None`` from ``load`` deletes it (its source is gone). The task says whether the
        entry was replaced."""
        running = self._running.get(key)
        if running is not None:
            return running
        task = asyncio.create_task(self._refresh(key, seen, load, ttl))
        self._running[key] = task
        task.add_done_callback(lambda _: self._running.pop(key, None))
        return task

    async def _refresh(
        self, key: str, seen: bytes, load: Callable[[], Awaitable[bytes | None]], ttl: int
    ) -> bool:
        if self._replace is None:
            self._replace = self.redis.register_script(_REPLACE)
        try:
            fresh = await load()
            done = await self._replace(keys=[key], args=[seen, fresh or b"", ttl])
        except Exception:
            # The entry stays as it is and expires; the request after that reads MongoDB.
            log.warning("refreshing cache entry %s failed", key, exc_info=True)
            return False
        return bool(done == 1)
