"""Broker rate limits as a simulator enforces them: sliding windows per key and category.

A broker kind names its categories (Deriv: general, outcome, pricing) and what a key is
(an account, or a connection not yet logged in); ``PUT /admin/limits`` replaces them.
"""

from __future__ import annotations

import time
from collections import deque

# (limit, window seconds) pairs per call category.
RateLimits = dict[str, list[tuple[int, float]]]


class RateLimiter:
    """Sliding-window counters per (key, category, window)."""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._hits: dict[tuple[str, str, int], deque[float]] = {}

    def allow(self, key: str, category: str) -> bool:
        now = time.monotonic()
        windows = self.limits.get(category, [])
        queues = []
        for i, (limit, seconds) in enumerate(windows):
            q = self._hits.setdefault((key, category, i), deque())
            while q and q[0] <= now - seconds:
                q.popleft()
            if len(q) >= limit:
                return False
            queues.append(q)
        for q in queues:
            q.append(now)
        return True
