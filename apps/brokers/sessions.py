"""What every broker adapter's sessions share, whatever the broker's protocol.

A session is one authorised connection per broker account, kept open and reused. A broker
kind supplies its session class (connect, log in, send a request and match its reply,
keep the socket alive) in ``apps/brokers/<kind>/session.py``; what is here is what every
kind's session and adapter need alike:

- the three ways a call on a session ends without a reply, from which the adapter makes
  the runner's outcomes: :class:`ConnectionLost` (``sent`` says whether the broker may
  have acted, so a buy is looked up before it is retried), :class:`SessionUnavailable`
  (transient, with when to try again), :class:`SessionRejected` (the credentials are
  refused: permanent for the account);
- :class:`ReconnectBackoff`: exponential backoff with full jitter, so a broker or
  simulator restart is not met by a thundering herd of accounts;
- :class:`Cooldown`: the pause after a rate-limit reply, longer each time in a row;
- :class:`SessionPool`: one session per account credential, made on first use and
  closed together;
- :func:`ready`: a session opened (or reused) as the runner's outcome values.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Protocol

from apps.brokers.base import Rejected, TransientFailure


class ConnectionLost(Exception):
    """The socket closed before the reply. ``sent``: the request may have reached the broker."""

    def __init__(self, sent: bool) -> None:
        super().__init__("connection lost" + (" after sending" if sent else " before sending"))
        self.sent = sent


class SessionUnavailable(Exception):
    """Cannot connect right now; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SessionRejected(Exception):
    """The broker refused the credentials: permanent for this account."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ReconnectBackoff:
    """When a failed connection may be tried again: exponential, with full jitter.

    After ``n`` failures in a row the next attempt waits a random time between half and
    all of ``min(ceiling, base * 2**n)`` (AWS architecture blog, "Exponential Backoff And
    Jitter"); a success starts over.
    """

    def __init__(self, base: float = 0.1, ceiling: float = 5.0) -> None:
        self._base = base
        self._ceiling = ceiling
        self._failures = 0
        self._next_attempt = 0.0  # monotonic

    def wait(self) -> float:
        """Seconds until the next attempt may start (0 or less: now)."""
        return self._next_attempt - time.monotonic()

    def failed(self) -> float:
        """One more failure; the seconds the next attempt must wait."""
        self._failures += 1
        ceiling = min(self._ceiling, self._base * (1 << min(self._failures, 16)))
        delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not crypto
        self._next_attempt = time.monotonic() + delay
        return delay

    def succeeded(self) -> None:
        self._failures = 0


class Cooldown:
    """After a rate-limit reply: pause the account's calls, longer each time in a row.

    Replies to calls that were already in flight when the pause began do not lengthen
    it: one burst over the limit is one offence, not one per request.
    """

    def __init__(self, first: float = 0.5, longest: float = 60.0) -> None:
        self._first = first
        self._longest = longest
        self._step = 0
        self.until = 0.0  # monotonic

    def start(self) -> float:
        """A rate-limit reply: the pause that now applies, in seconds."""
        remaining = self.remaining()
        if remaining > 0:
            return remaining
        self._step = min(self._step + 1, 6)
        pause = min(self._longest, self._first * (1 << (self._step - 1)))
        self.until = time.monotonic() + pause
        return pause

    def reset(self) -> None:
        """A call went through: the next offence starts from the first pause."""
        self._step = 0

    def remaining(self) -> float:
        return max(0.0, self.until - time.monotonic())


class Session(Protocol):
    async def close(self) -> None: ...


class Opens(Protocol):
    async def ensure_open(self) -> object: ...


async def ready(session: Opens) -> Rejected | TransientFailure | None:
    """Open (or reuse) ``session``; ``None`` when it is ready. Refused credentials are
    refused for good: every order on the account fails until the subscriber links it
    again, so the rejection marks the account (``account_refused``)."""
    try:
        await session.ensure_open()
    except SessionRejected as exc:
        return Rejected(order_id="", code=exc.code, message=exc.message, account_refused=True)
    except SessionUnavailable as exc:
        return TransientFailure(
            order_id="", code="ConnectionFailed", message=str(exc), retry_after=exc.retry_after
        )
    return None


class SessionPool[S: Session]:
    """One session per account credential, made by ``open_session`` on first use."""

    def __init__(self, open_session: Callable[[str], S]) -> None:
        self._open_session = open_session
        self._sessions: dict[str, S] = {}

    def get(self, credential: str) -> S:
        """The account's session, made now if it has none (not connected yet)."""
        session = self._sessions.get(credential)
        if session is None:
            session = self._sessions[credential] = self._open_session(credential)
        return session

    def existing(self, credential: str) -> S | None:
        """The account's session if one was made."""
        return self._sessions.get(credential)

    async def close(self) -> None:
        """Close every session and forget them."""
        await asyncio.gather(*(s.close() for s in self._sessions.values()))
        self._sessions.clear()
