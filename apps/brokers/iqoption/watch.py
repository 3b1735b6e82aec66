"""Following open IQ Option options to settlement: one subscription per account.

IQ Option pushes ``socket-option-closed`` for every option of a user to each of its
sockets subscribed to ``portfolio.position-changed``. Each account with options to follow
subscribes once per socket (turbo and binary), on the socket its orders are placed over,
and every watched option of that account is settled from the pushes. Guarantees:

- each watched option's callback is called exactly once (settled, or unavailable when
  the account's credentials are refused or the broker does not know the option), never
  after its handle is cancelled;
- a push that never came (a lost message, a dropped socket, a broker that does not push)
  is covered by polling ``api_game_betinfo``: from ``expires_at`` + ``grace`` on, backing
  off from 1 s to 30 s between lookups of an option that stays open;
- a socket that closes is reopened and subscribed again, and options whose expiry passed
  meanwhile are looked up at once (their push went to the closed socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apps.brokers.base import BrokerAccount, OnSettled, SettlementUnavailable
from apps.brokers.iqoption.protocol import (
    POSITION_INSTRUMENTS,
    OptionClosed,
    StillOpen,
    UnknownOption,
    betinfo,
    read_betinfo,
    read_option_closed,
    subscribe_positions,
)
from apps.brokers.iqoption.session import (
    ConnectionLost,
    IQSession,
    SessionRejected,
    SessionUnavailable,
)
from apps.core.brokers.iqoption import Balance

log = logging.getLogger("brokers.iqoption.watch")

# Longest pause between lookups of an option that stays open past its expiry.
_LONGEST_CHECK_PAUSE = 30.0


@dataclass(slots=True, eq=False)
class _Watched:
    on_settled: OnSettled
    expires_at: float
    check_at: float  # epoch seconds: look it up if no push came by then
    checks: int = 0


@dataclass(eq=False)
class _AccountWatch:
    account: BrokerAccount
    contracts: dict[int, _Watched] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    session: IQSession | None = None
    subscribed_on: int = -1  # the session's socket (connects count) subscribed


class WatchHandle:
    """Stops watching one option (its callback is never called after ``cancel``)."""

    __slots__ = ("_option_id", "_watch")

    def __init__(self, watch: _AccountWatch, option_id: int) -> None:
        self._watch = watch
        self._option_id = option_id

    def cancel(self) -> None:
        self._watch.contracts.pop(self._option_id, None)


class AccountWatches:
    def __init__(
        self,
        session_for: Callable[[BrokerAccount], IQSession],
        balance_for: Callable[[BrokerAccount, IQSession], Balance | None],
        key_of: Callable[[BrokerAccount], str],
        *,
        grace: float = 3.0,
        reply_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session_for = session_for
        self._balance_for = balance_for
        self._key_of = key_of
        self.grace = grace
        self.reply_timeout = reply_timeout
        self.clock = clock
        self._watches: dict[str, _AccountWatch] = {}
        self.lookups = 0  # api_game_betinfo calls made (observability)
        self.pushed = 0  # options settled from a push (observability)

    @property
    def following(self) -> int:
        return sum(len(w.contracts) for w in self._watches.values())

    def watch(
        self, account: BrokerAccount, contract_id: str, expires_at: float, on_settled: OnSettled
    ) -> WatchHandle:
        key = self._key_of(account)
        watch = self._watches.get(key)
        if watch is None:
            watch = self._watches[key] = _AccountWatch(account)
        watch.account = account
        option_id = int(contract_id)
        watch.contracts[option_id] = _Watched(on_settled, expires_at, expires_at + self.grace)
        watch.wake.set()
        if watch.task is None or watch.task.done():
            watch.task = asyncio.create_task(self._follow(watch), name="iqoption-watch")
        return WatchHandle(watch, option_id)

    async def close(self) -> None:
        tasks = [w.task for w in self._watches.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._watches.clear()

    # settling ---------------------------------------------------------------------------

    def _settle(self, watch: _AccountWatch, closed: OptionClosed) -> None:
        watched = watch.contracts.pop(closed.option_id, None)
        if watched is not None:
            watched.on_settled(closed.settlement())

    def _unavailable(self, watch: _AccountWatch, message: str) -> None:
        contracts, watch.contracts = watch.contracts, {}
        for option_id, watched in contracts.items():
            watched.on_settled(SettlementUnavailable(contract_id=str(option_id), message=message))

    def _listen(self, watch: _AccountWatch, session: IQSession) -> None:
        """Settle from the session's pushes; wake the account's task when its socket closes."""

        def pushed(name: str, msg: Any) -> None:
            if name != "socket-option-closed":
                return
            closed = read_option_closed(msg)
            if isinstance(closed, OptionClosed):
                if closed.option_id in watch.contracts:
                    self.pushed += 1
                self._settle(watch, closed)
            else:
                log.warning("IQ Option pushed %s", closed.reason)

        session.add_listener(pushed)
        session.on_close(watch.wake.set)
        watch.session = session

    # the account's task -----------------------------------------------------------------

    async def _follow(self, watch: _AccountWatch) -> None:
        while watch.contracts:
            watch.wake.clear()
            session = self._session_for(watch.account)
            try:
                await session.ensure_open()
            except SessionRejected as exc:
                self._unavailable(watch, exc.message)
                return
            except SessionUnavailable as exc:
                await self._sleep(watch, max(exc.retry_after, 0.1))
                continue
            if watch.session is not session:
                self._listen(watch, session)
            if watch.subscribed_on != session.connects and not await self._subscribe(
                watch, session
            ):
                continue
            await self._check_due(watch, session)
            if not watch.contracts:
                return
            next_check = min(w.check_at for w in watch.contracts.values())
            await self._sleep(watch, max(next_check - self.clock(), 0.05))

    async def _sleep(self, watch: _AccountWatch, seconds: float) -> None:
        """Until ``seconds`` pass or the watch is woken (a new option, a closed socket)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch.wake.wait(), seconds)

    async def _subscribe(self, watch: _AccountWatch, session: IQSession) -> bool:
        balance = self._balance_for(watch.account, session)
        if balance is None:
            self._unavailable(watch, "the account has no balance of the type it trades")
            return False
        connects = session.connects
        try:
            for instrument in POSITION_INSTRUMENTS:
                await session.send(
                    subscribe_positions(session.new_request_id(), balance.id, instrument)
                )
        except ConnectionLost:
            return False
        watch.subscribed_on = connects
        # Pushes of options that ended before this subscription went nowhere.
        now = self.clock()
        for watched in watch.contracts.values():
            if watched.expires_at <= now:
                watched.check_at = min(watched.check_at, now)
        return True

    async def _check_due(self, watch: _AccountWatch, session: IQSession) -> None:
        now = self.clock()
        due = [oid for oid, w in watch.contracts.items() if w.check_at <= now]
        for option_id in due:
            watched = watch.contracts[option_id]
            watched.checks += 1
            # 1, 2, 4 ... up to 30 s between lookups of an option that stays open.
            pause = min(_LONGEST_CHECK_PAUSE, 2.0 ** (watched.checks - 1))
            watched.check_at = now + pause
        if due:
            balance = self._balance_for(watch.account, session)
            currency = balance.currency if balance else watch.account.currency
            await asyncio.gather(*(self._look_up(watch, session, oid, currency) for oid in due))

    async def _look_up(
        self, watch: _AccountWatch, session: IQSession, option_id: int, currency: str
    ) -> None:
        self.lookups += 1
        try:
            reply = await session.request(
                betinfo(session.new_request_id(), option_id, currency or "USD"),
                reply_within=self.reply_timeout,
            )
        except (ConnectionLost, TimeoutError):
            return  # looked up again at its next check, on a reopened socket
        match read_betinfo(reply, option_id):
            case OptionClosed() as closed:
                self._settle(watch, closed)
            case StillOpen():
                pass
            case UnknownOption(message=message):
                watched = watch.contracts.pop(option_id, None)
                if watched is not None:
                    watched.on_settled(
                        SettlementUnavailable(contract_id=str(option_id), message=message)
                    )
            case unreadable:
                log.warning("looking up IQ Option option %s: %s", option_id, unreadable)
