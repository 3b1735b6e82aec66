"""Following open Deriv contracts to settlement: one stream per account, not per contract.

A fan-out places thousands of contracts over hundreds of accounts. Subscribing to each
contract's ``proposal_open_contract`` would cost one request (and a rate-limited
"pricing" call) per contract while the fan-out is still running. Instead each account
gets one ``proposal_open_contract`` stream *without* ``contract_id`` — Deriv's stream of
all the account's open contracts (deriv.md) — opened once and kept while the account has
contracts to follow; every contract of that account is settled from it.

What a stream cannot tell is covered by direct lookups (``proposal_open_contract`` with
the ``contract_id``, no subscription):

- contracts that sold before the stream was (re)opened: right after subscribing, one
  ``portfolio`` call lists the account's open contracts, and watched contracts missing
  from it are looked up;
- anything still unsettled well after its expiry (a lost message, a broker that does not
  push): a sweeper looks those up, backing off, until they answer.

Opening a stream waits ``delay`` seconds after the first contract of an account, so the
subscriptions of a large fan-out come after its first placements rather than between
them, and then until ``lead`` seconds before the account's first contract is due to
end, so a contract that runs for an hour is not followed by a stream open for an hour.
(A short lead is no gain for short contracts: a large fan-out's streams would then open
together with its settlements and its last placements; see Settings.)

Then it waits for the adapter's burst of placements to end (:class:`Bursts`): until
``ready_before`` seconds before the account's first contract ends, and ``burst_wait``
seconds at least, because opening a stream (connect, authorize, subscribe, portfolio, on
both sides of the socket) costs about as much CPU as placing its account's contracts, and
streams opened during a fan-out's last placements slow them. The streams that waited
open at most ``open_at_once`` at a time; a contract that ends before its stream opens is
found by the portfolio sweep below and looked up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from apps.brokers.base import (
    BrokerAccount,
    OnSettled,
    Settlement,
    SettlementUnavailable,
)
from apps.brokers.bursts import Bursts
from apps.brokers.deriv.protocol import OpenContract
from apps.brokers.deriv.session import (
    ConnectionLost,
    DerivSession,
    SessionRejected,
    SessionUnavailable,
)

log = logging.getLogger("brokers.deriv.watch")

# Queued stream updates handled before giving the event loop a turn.
_YIELD_EVERY = 64


@dataclass(slots=True, eq=False)
class _Watched:
    on_settled: OnSettled
    check_at: float  # epoch seconds: look it up directly if no word came by then
    checks: int = 0


@dataclass(eq=False)
class _AccountWatch:
    account: BrokerAccount
    contracts: dict[int, _Watched] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    idle_since: float = 0.0


class WatchHandle:
    """Stops watching one contract (its callback is never called after ``cancel``)."""

    __slots__ = ("_contract_id", "_watch")

    def __init__(self, watch: _AccountWatch, contract_id: int) -> None:
        self._watch = watch
        self._contract_id = contract_id

    def cancel(self) -> None:
        self._watch.contracts.pop(self._contract_id, None)


class AccountWatches:
    def __init__(
        self,
        session_for: Callable[[BrokerAccount], DerivSession],
        *,
        delay: float = 1.0,
        lead: float = 60.0,
        bursts: Bursts | None = None,
        burst_wait: float = 2.0,
        ready_before: float = 5.0,
        open_at_once: int = 32,
        grace: float = 3.0,
        linger: float = 60.0,
        reply_timeout: float = 10.0,
        sweep_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session_for = session_for
        self.delay = delay
        self.lead = lead
        self.bursts = bursts
        self.burst_wait = burst_wait
        self.ready_before = ready_before
        # Streams being opened (connect, authorize, subscribe) at once: the streams that
        # waited for a burst all become due when it ends.
        self._opening = asyncio.Semaphore(open_at_once)
        self.grace = grace
        self.linger = linger
        self.reply_timeout = reply_timeout
        self.sweep_interval = sweep_interval
        self.clock = clock
        self._watches: dict[str, _AccountWatch] = {}
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def following(self) -> int:
        return sum(len(w.contracts) for w in self._watches.values())

    def watch(
        self, account: BrokerAccount, contract_id: str, expires_at: float, on_settled: OnSettled
    ) -> WatchHandle:
        watch = self._watches.get(account.token)
        if watch is None:
            watch = self._watches[account.token] = _AccountWatch(account)
        cid = int(contract_id)
        watch.contracts[cid] = _Watched(on_settled, expires_at + self.grace)
        if watch.task is None or watch.task.done():
            watch.task = asyncio.create_task(self._stream(watch), name="deriv-watch")
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep(), name="deriv-watch-sweeper")
        return WatchHandle(watch, cid)

    async def close(self) -> None:
        tasks = [w.task for w in self._watches.values() if w.task is not None]
        if self._sweeper is not None:
            tasks.append(self._sweeper)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._watches.clear()
        self._sweeper = None

    # settling ---------------------------------------------------------------------------

    def _settle(self, watch: _AccountWatch, state: OpenContract) -> None:
        watched = watch.contracts.pop(state.contract_id, None)
        if watched is None:
            return
        sell_price = state.sell_price or Decimal(0)
        watched.on_settled(
            Settlement(
                contract_id=str(state.contract_id),
                outcome="won" if state.status == "won" else "lost",
                buy_price=state.buy_price,
                sell_price=sell_price,
                profit=sell_price - state.buy_price,
                sell_time=state.sell_time or int(self.clock()),
                entry_spot=state.entry_value,
                exit_spot=state.exit_value,
                expiry_at=state.date_expiry,
            )
        )

    def _unavailable(self, watch: _AccountWatch, message: str) -> None:
        contracts, watch.contracts = watch.contracts, {}
        for cid, watched in contracts.items():
            watched.on_settled(SettlementUnavailable(contract_id=str(cid), message=message))

    # the account's stream ---------------------------------------------------------------

    async def _until_due(self, watch: _AccountWatch) -> None:
        """Wait ``delay``, then until ``lead`` seconds before the first watched contract
        ends (looked at again every second: a shorter contract may join meanwhile), then
        for the burst of placements to end: at most until ``ready_before`` seconds before
        that contract ends, and at least ``burst_wait``."""
        await asyncio.sleep(self.delay)
        while watch.contracts:
            wait = self._first_end(watch) - self.lead - self.clock()
            if wait <= 0:
                break
            await asyncio.sleep(min(wait, 1.0))
        if self.bursts is not None and watch.contracts:
            room = self._first_end(watch) - self.ready_before - self.clock()
            await self.bursts.quiet(max(self.burst_wait, room))

    def _first_end(self, watch: _AccountWatch) -> float:
        """When the first of the account's watched contracts is due to end."""
        return min(w.check_at for w in watch.contracts.values()) - self.grace

    async def _stream(self, watch: _AccountWatch) -> None:
        await self._until_due(watch)
        session = self._session_for(watch.account)
        while watch.contracts or self.clock() - watch.idle_since < self.linger:
            try:
                async with self._opening:
                    await session.ensure_open()
                    req_id, stream = await session.subscribe({"proposal_open_contract": 1})
            except SessionRejected as exc:
                self._unavailable(watch, exc.message)
                return
            except SessionUnavailable as exc:
                await asyncio.sleep(max(exc.retry_after, 0.1))
                continue
            except ConnectionLost:
                continue
            subscription: str | None = None
            try:
                # Contracts watched so far may have sold before the stream existed.
                before = set(watch.contracts)
                sweep = asyncio.create_task(self._sweep_sold(watch, session, before))
                try:
                    subscription = await self._read(watch, session, stream)
                finally:
                    sweep.cancel()
                    await asyncio.gather(sweep, return_exceptions=True)
            finally:
                session.end_stream(req_id)
            if subscription is not None:  # ended on purpose: nothing left to follow
                if subscription:  # its id is known only once the broker sent a message
                    with contextlib.suppress(Exception):
                        await session.request({"forget": subscription}, reply_within=2.0)
                return

    async def _read(
        self, watch: _AccountWatch, session: DerivSession, stream: asyncio.Queue[Any]
    ) -> str | None:
        """Settle from the stream until it breaks (``None``) or has lingered unused (its
        subscription id, to forget)."""
        subscription: str | None = None
        in_a_row = 0
        while True:
            # A settling fan-out queues many updates at once. Those are taken without a
            # timer each (a timer per message costs more than handling it) and with a turn
            # for the rest of the loop every _YIELD_EVERY: awaiting a queue that holds
            # items never suspends, so a backlog would hold the loop.
            try:
                message = stream.get_nowait()
                in_a_row += 1
                if in_a_row % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            except asyncio.QueueEmpty:
                in_a_row = 0
                try:
                    message = await asyncio.wait_for(stream.get(), self.sweep_interval * 5)
                except TimeoutError:
                    if not watch.contracts and self.clock() - watch.idle_since >= self.linger:
                        return subscription or ""
                    continue
            if isinstance(message, ConnectionLost):
                return None
            error = message.get("error")
            if error:
                code = error.get("code")
                if code == "AuthorizationRequired":
                    session.authorized = False
                elif code == "RateLimit":
                    await asyncio.sleep(session.cool_down())
                else:
                    log.warning("contract stream of an account failed: %s", error.get("message"))
                    await asyncio.sleep(1.0)
                return None
            subscription = (message.get("subscription") or {}).get("id", subscription)
            body = message.get("proposal_open_contract") or {}
            if "contract_id" not in body:
                continue  # the answer for an account with no open contract
            self._on_update(watch, body)

    async def _sweep_sold(
        self, watch: _AccountWatch, session: DerivSession, before: set[int]
    ) -> None:
        """Look up the watched contracts that are no longer open, once the stream is on."""
        try:
            reply = await session.request({"portfolio": 1}, reply_within=self.reply_timeout)
        except (ConnectionLost, TimeoutError):
            return  # the stream breaks too and is reopened, with a new sweep
        if reply.get("error"):
            # Without the listing, every watched contract waits for its expiry check.
            return
        still_open = {int(c["contract_id"]) for c in reply["portfolio"].get("contracts", [])}
        gone = [cid for cid in before if cid in watch.contracts and cid not in still_open]
        await asyncio.gather(*(self._look_up(watch, session, cid) for cid in gone))

    async def _look_up(self, watch: _AccountWatch, session: DerivSession, cid: int) -> None:
        try:
            reply = await session.request(
                {"proposal_open_contract": 1, "contract_id": cid}, reply_within=self.reply_timeout
            )
        except (ConnectionLost, TimeoutError):
            return
        error = reply.get("error")
        if error:
            if error.get("code") == "ContractNotFound":
                watched = watch.contracts.pop(cid, None)
                if watched is not None:
                    watched.on_settled(
                        SettlementUnavailable(
                            contract_id=str(cid), message=str(error.get("message"))
                        )
                    )
            return
        self._on_update(watch, reply["proposal_open_contract"])

    def _on_update(self, watch: _AccountWatch, body: dict[str, Any]) -> None:
        """A contract's state from the stream or a lookup: settle it once it is sold."""
        if not body.get("is_sold"):
            return  # still open, or expired and not yet sold: nothing to read
        state = msgspec.convert(body, OpenContract, strict=False)
        if state.is_sold:  # (a "0" that came as a string)
            self._settle(watch, state)
            if not watch.contracts:
                watch.idle_since = self.clock()

    # contracts nobody has heard of for too long ----------------------------------------

    async def _sweep(self) -> None:
        while self._watches:
            await asyncio.sleep(self.sweep_interval)
            now = self.clock()
            for token, watch in list(self._watches.items()):
                if watch.task is None or watch.task.done():
                    if not watch.contracts:
                        del self._watches[token]  # lingered out, or gave up
                        continue
                    watch.task = asyncio.create_task(self._stream(watch), name="deriv-watch")
                due = [cid for cid, w in watch.contracts.items() if w.check_at <= now]
                if not due:
                    continue
                for cid in due:
                    watched = watch.contracts[cid]
                    watched.checks += 1
                    # 1, 2, 4 ... up to 30 s between lookups of a contract that stays open.
                    watched.check_at = now + min(30.0, 2.0 ** (watched.checks - 1))
                session = self._session_for(watch.account)
                if session.is_open and session.authorized:
                    for cid in due:
                        task = asyncio.create_task(self._look_up(watch, session, cid))
                        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("looking up a contract failed", exc_info=task.exception())
