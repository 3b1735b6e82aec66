"""Waiting out a dependency outage instead of giving work up.

A service that cannot reach Valkey or NATS for a moment holds what it is doing and tries
again with back-off: an order or a signal is delayed by an outage, never dropped by it.
Only errors that say a dependency is away are retried; any other error is a defect and
is raised to the caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import nats.errors
import redis.exceptions

# What an unreachable or restarting Valkey or NATS raises (a restarting Valkey answers
# LOADING, a BusyLoadingError, which is a ConnectionError).
DEPENDENCY_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    nats.errors.Error,
    ConnectionError,
    TimeoutError,
)


class AlreadyWaited(ConnectionError):
    """A dependency error raised after waiting for the dependency (a write that no replica
    confirmed within its WAIT): :func:`hold` tries again without a pause of its own, so a
    replica that attaches is used at once."""


def backoff(attempt: int, *, first: float = 0.25, cap: float = 2.0) -> float:
    """The pause before try ``attempt + 1`` (``attempt`` ≥ 0 failed tries so far): ``first``
    doubling up to ``cap``, short enough that a blip costs little of a signal's validity,
    long enough that a long outage does not spin."""
    # The exponent is bounded: an outage of thousands of tries must not overflow a float.
    return min(cap, first * 2.0 ** min(max(0, attempt), 32))


async def hold[T](
    what: str,
    step: Callable[[], Awaitable[T]],
    log: logging.Logger,
    *,
    cap: float = 2.0,
) -> T:
    """``await step()`` until it succeeds, retrying dependency errors with back-off for as
    long as the outage lasts (one warning when it starts, one line when it ends)."""
    attempt = 0
    started = 0.0
    while True:
        try:
            result = await step()
        except DEPENDENCY_ERRORS as exc:
            if attempt == 0:
                started = time.monotonic()
                log.warning("%s: %r; holding it until the dependency is back", what, exc)
            if not isinstance(exc, AlreadyWaited):
                await asyncio.sleep(backoff(attempt, cap=cap))
            attempt += 1
            continue
        if attempt:
            took = time.monotonic() - started
            log.info("%s: done after %.1f s and %d tries", what, took, attempt)
        return result
