"""The IQ Option broker adapter: places the copier's orders as binary/turbo options.

One order is one ``binary-options.open-option`` call whose ``request_id`` is the copier's
order id (IQ Option has no batch buy). Guarantees:

- an order never has two options: IQ Option offers no client order id that makes a
  repeated buy harmless, so when a buy's reply is lost (the socket closed after sending,
  the reply timed out) the adapter lists the balance's options (``get-options``) and
  matches the order's terms — asset, direction, expiry, stake, bought since its send —
  with the claims every worker shares (:class:`ContractClaims`), exactly like the Deriv
  adapter, before anything may be retried (concepts.md, "Duplicates");
- a buy is never sent when it could be booked after its signal's ``valid_until``
  (:func:`apps.brokers.orders.too_late` with the broker's recent answer times);
- the option ends at the order's ``expiry_at`` (the router chose it on IQ Option's grid);
  an order without one is rejected, never guessed;
- per account at most ``account_concurrency`` buys are in flight at a time, so one
  account's many orders do not queue on its one socket ahead of everything else it
  carries; the runner bounds the worker's;
- refused credentials (wrong password, a refused ssid of an ssid-only account, a
  two-factor account) reject the order with ``account_refused``: the account needs
  linking again, and retrying cannot help;
- the balance traded is the one of the account's ``balance_type`` ("practice" unless the
  subscriber chose "real").
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import partial

import httpx
import msgspec

from apps.brokers.base import (
    BrokerAccount,
    BrokerAdapter,
    ContractClaims,
    Expired,
    Found,
    NotFound,
    OnSettled,
    OrderRequest,
    PlaceOutcome,
    ReconcileResult,
    Rejected,
    Settlement,
    SettlementResult,
    SettlementUnavailable,
    SettlementWatch,
    TransientFailure,
    Undecidable,
)
from apps.brokers.iqoption.protocol import (
    RATE_LIMITED,
    ListedOption,
    OptionOpened,
    OptionRefused,
    ReplyUnreadable,
    get_options,
    open_option,
    option_type_for,
    read_open_option,
    read_options,
    read_refusal,
    same_terms,
)
from apps.brokers.iqoption.session import (
    ConnectionLost,
    IQSession,
    SessionRejected,
    SessionUnavailable,
)
from apps.brokers.iqoption.watch import AccountWatches
from apps.brokers.orders import BookingDelay, too_late
from apps.brokers.reconciliation import (
    PlacementMemory,
    SharedListings,
    lost_reply_outcome,
    pick_match,
)
from apps.brokers.sessions import SessionPool, ready
from apps.core.brokers.iqoption import (
    ACTIVE_IDS,
    Balance,
    BalanceType,
    purchasable,
)

DEFAULT_LOGIN_URL = "http://127.0.0.1:8702/api/v2/login"
DEFAULT_WS_URL = "ws://127.0.0.1:8702/echo/websocket"
# Why an order whose session took until too close to its signal's end was not bought.
TOO_LATE = "signal expired before the broker could book it"
# Orders the runner claims and finishes together. IQ Option has no batch buy, so a chunk
# is bookkeeping only: large enough that claims and finishes take few Valkey round trips,
# small enough that a chunk's slowest buy holds back few answered ones.
PLACE_CHUNK = 32


class IQOptionAdapter(BrokerAdapter):
    kind = "iqoption"

    def __init__(
        self,
        login_url: str = DEFAULT_LOGIN_URL,
        ws_url: str = DEFAULT_WS_URL,
        *,
        reply_timeout: float = 10.0,
        reconcile_timeout: float = 10.0,
        reconcile_grace: float = 0.3,
        account_concurrency: int = 4,
        watch_grace: float = 3.0,
        connect_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.login_url = login_url
        self.ws_url = ws_url
        self.reply_timeout = reply_timeout
        self.reconcile_timeout = reconcile_timeout
        self.reconcile_grace = reconcile_grace
        self.account_concurrency = max(1, account_concurrency)
        self.connect_timeout = connect_timeout
        self.clock = clock
        self._http = httpx.AsyncClient(timeout=connect_timeout)
        self._accounts: dict[str, BrokerAccount] = {}
        self._sessions = SessionPool(self._open_session)
        self._slots: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(self.account_concurrency)
        )
        # Orders placed and sent by this process, options known to be an order's, by
        # balance id.
        self.memory = PlacementMemory[int](clock)
        # A buy is sent only if the broker's recent answers say it is booked in time.
        self.booking_delay = BookingDelay()
        # One get-options per balance at a time, whatever the number of its orders being
        # reconciled.
        self.listings = SharedListings[int, _Listing]()
        self.watches = AccountWatches(
            self.session,
            self.balance,
            watch_key,
            grace=watch_grace,
            reply_timeout=reply_timeout,
            clock=clock,
        )

    # sessions ---------------------------------------------------------------------------

    def session(self, account: BrokerAccount) -> IQSession:
        key = account_key(account)
        self._accounts[key] = account
        session = self._sessions.get(key)
        session.set_credentials(account.login, account.password, account.token)
        return session

    def _open_session(self, key: str) -> IQSession:
        account = self._accounts[key]
        return IQSession(
            self.login_url,
            self.ws_url,
            self._http,
            login=account.login,
            password=account.password,
            ssid=account.token,
            connect_timeout=self.connect_timeout,
            clock=self.clock,
        )

    def balance(self, account: BrokerAccount, session: IQSession) -> Balance | None:
        """The balance the account trades (its ``balance_type``, "practice" by default)."""
        if session.profile is None:
            return None
        return session.profile.balance(balance_type_of(account))

    async def connect(self, account: BrokerAccount) -> Rejected | TransientFailure | None:
        return await ready(self.session(account))

    async def close(self) -> None:
        await self.watches.close()
        await self._sessions.close()
        await self._http.aclose()

    # placing ----------------------------------------------------------------------------

    def _too_late(self, order: OrderRequest) -> bool:
        return too_late(order.valid_until, self.clock(), self.booking_delay.seconds())

    def _precheck(self, order: OrderRequest) -> PlaceOutcome | tuple[int, int]:
        """What stops ``order`` before the broker, else its active id and expiry."""
        known = self.memory.placed(order.order_id)
        if known is not None:  # placed by this process already: report, never rebuy
            return known
        if self._too_late(order):
            return Expired(order_id=order.order_id, last_message="signal expired")
        terms = terms_of(order)
        if isinstance(terms, str):
            code, _, message = terms.partition(": ")
            return Rejected(order_id=order.order_id, code=code, message=message)
        return terms

    async def place(self, order: OrderRequest) -> PlaceOutcome:
        terms = self._precheck(order)
        if not isinstance(terms, tuple):
            return terms
        active_id, expiry_at = terms
        connected = await self.connect(order.account)
        if connected is not None:
            return msgspec.structs.replace(connected, order_id=order.order_id)
        session = self.session(order.account)
        balance = self.balance(order.account, session)
        if balance is None:
            return Rejected(
                order_id=order.order_id,
                code="NoSuchBalance",
                message=f"the IQ Option account has no {balance_type_of(order.account)} balance",
            )
        async with self._slots[account_key(order.account)]:
            if self._too_late(order):  # connecting or waiting for a slot took that long
                return Expired(order_id=order.order_id, last_message=TOO_LATE)
            pause = session.cooldown.remaining()
            if pause > 0:
                return _transient(
                    order, RATE_LIMITED, "account cooling down after a rate limit", pause
                )
            now = session.server_now()
            if not purchasable(expiry_at, now):
                return Rejected(
                    order_id=order.order_id,
                    code="PurchaseTimeOver",
                    message="IQ Option no longer sells options ending at the chosen expiry",
                )
            request = open_option(
                order.order_id,
                balance_id=balance.id,
                active_id=active_id,
                option_type_id=option_type_for(expiry_at, now),
                direction=order.direction,
                expired=expiry_at,
                price=order.stake,
            )
            self.memory.sent(order.order_id)
            sent = self.clock()
            try:
                reply = await session.request(request, reply_within=self.reply_timeout)
            except ConnectionLost as lost:
                if not lost.sent:
                    return _transient(order, "ConnectionLost", "not sent; reconnecting", 0.0)
                lost_reply = True
            except TimeoutError:
                await session.abort()  # a reply this late is not trusted; start clean
                lost_reply = False
            else:
                self.booking_delay.observe(self.clock() - sent)
                match read_open_option(reply):
                    case OptionOpened() as opened:
                        session.cooldown.reset()
                        return self.memory.record(
                            balance.id, order.order_id, opened.placed(order.order_id)
                        )
                    case OptionRefused(code=code, message=message) if code == RATE_LIMITED:
                        return _transient(order, code, message, session.cooldown.start())
                    case OptionRefused(code=code, message=message):
                        return Rejected(order_id=order.order_id, code=code, message=message)
                    case ReplyUnreadable():
                        lost_reply = False  # unreadable: as undecided as a timeout
        return await self._after_lost_reply(order, timed_out=not lost_reply)

    async def place_many(self, orders: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        """Each order alone (IQ Option has no batch buy), all at once: ``place`` bounds
        each account's buys in flight."""
        return list(await asyncio.gather(*(self.place(o) for o in orders)))

    async def _after_lost_reply(self, order: OrderRequest, *, timed_out: bool) -> PlaceOutcome:
        result = await self.reconcile(order)
        return lost_reply_outcome(order.order_id, result, timed_out=timed_out, noun="option")

    # reconciliation ---------------------------------------------------------------------

    async def reconcile(
        self, order: OrderRequest, claims: ContractClaims | None = None
    ) -> ReconcileResult:
        known = self.memory.placed(order.order_id)
        if known is not None:
            return Found(placed=known)
        terms = terms_of(order)
        if isinstance(terms, str):
            return NotFound()  # it could never have been sent
        active_id, expiry_at = terms
        session = self.session(order.account)
        deadline = time.monotonic() + self.reconcile_timeout
        since = self.memory.since(order.order_id, order.valid_until)
        for attempt in range(2):
            balance = await self._reconcile_balance(session, order, deadline)
            if isinstance(balance, Undecidable):
                return balance
            listed = await self.listings.take(
                balance.id,
                since,
                # A buy this process sent itself may be newer than a listing running.
                joinable=attempt == 0 and not self.memory.sent_here(order.order_id),
                list_now=partial(self._list_options, session, balance.id, deadline),
            )
            if isinstance(listed, Undecidable):
                return listed
            balance_id, options = listed
            candidates = {
                option.option_id: option
                for option in options
                if same_terms(
                    option,
                    active_id=active_id,
                    direction=order.direction,
                    expired=expiry_at,
                    price=order.stake,
                    since=since - 2,  # the broker's clock may run a little behind ours
                )
            }
            hit = await pick_match(
                order.order_id, candidates, self.memory.owners(balance_id), claims, "option"
            )
            if isinstance(hit, Undecidable):
                return hit
            if hit is not None:
                placed = hit.opened().placed(order.order_id, reconciled=True)
                return Found(placed=self.memory.record(balance_id, order.order_id, placed))
            if attempt == 0:
                # A buy racing the dropped socket may be listed a moment later.
                await asyncio.sleep(self.reconcile_grace)
        return NotFound()

    async def _reconcile_balance(
        self, session: IQSession, order: OrderRequest, deadline: float
    ) -> Balance | Undecidable:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Undecidable(reason="could not log in to list the account's options")
            try:
                await session.ensure_open()
            except SessionRejected as exc:
                return Undecidable(reason=f"cannot log in to reconcile: {exc.message}")
            except SessionUnavailable as exc:
                if exc.retry_after >= remaining:
                    return Undecidable(reason=f"cannot log in to reconcile: {exc}")
                await asyncio.sleep(max(exc.retry_after, 0.05))
                continue
            balance = self.balance(order.account, session)
            if balance is None:
                return Undecidable(reason="the account has no balance of the type it trades")
            return balance

    async def _list_options(self, session: IQSession, balance_id: int, deadline: float) -> _Listing:
        """The balance's latest options, newest first."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Undecidable(reason="could not list the account's options in time")
            try:
                await session.ensure_open()
                reply = await session.request(
                    get_options(session.new_request_id(), balance_id), reply_within=remaining
                )
            except SessionRejected as exc:
                return Undecidable(reason=f"cannot log in to reconcile: {exc.message}")
            except SessionUnavailable as exc:
                await asyncio.sleep(min(max(exc.retry_after, 0.05), max(remaining, 0.0)))
                continue
            except (ConnectionLost, TimeoutError):
                await asyncio.sleep(0.1)
                continue
            refused = read_refusal(reply)
            if refused is not None and refused.code == RATE_LIMITED:
                await asyncio.sleep(min(session.cooldown.start(), max(remaining, 0.0)))
                continue
            options = read_options(reply)
            if isinstance(options, ReplyUnreadable):
                return Undecidable(reason=options.reason)
            return balance_id, options

    # settlement -------------------------------------------------------------------------

    def watch_settlement(
        self,
        account: BrokerAccount,
        contract_id: str,
        expires_at: float,
        on_settled: OnSettled,
    ) -> SettlementWatch:
        """One ``portfolio.position-changed`` subscription per account serves every option
        of it, polled when no push came (:mod:`apps.brokers.iqoption.watch`)."""
        return self.watches.watch(account, contract_id, expires_at, on_settled)

    async def follow_settlement(
        self, account: BrokerAccount, contract_id: str
    ) -> Settlement | SettlementUnavailable:
        """Wait for one option's settlement: looked up at once, then pushed or polled."""
        done: asyncio.Future[SettlementResult] = asyncio.get_running_loop().create_future()

        def settled(result: SettlementResult) -> None:
            if not done.done():
                done.set_result(result)

        handle = self.watches.watch(
            account, contract_id, self.clock() - self.watches.grace, settled
        )
        try:
            return await done
        finally:
            handle.cancel()


type _Listing = tuple[int, list[ListedOption]] | Undecidable


def account_key(account: BrokerAccount) -> str:
    """The session key of an account: its login, or its ssid when it has no login."""
    return f"login:{account.login}" if account.login and account.password else account.token


def watch_key(account: BrokerAccount) -> str:
    """One settlement watch per balance traded: a login linked twice (practice and real)
    shares its socket, and each balance has its own subscription."""
    return f"{account_key(account)}|{balance_type_of(account)}"


def balance_type_of(account: BrokerAccount) -> BalanceType:
    """The account's ``balance_type``; "practice" unless it names the real balance."""
    return "real" if account.balance_type == "real" else "practice"


def terms_of(order: OrderRequest) -> tuple[int, int] | str:
    """The order's ``active_id`` and expiry, or ``"<code>: <why>"`` it cannot be bought."""
    active_id = ACTIVE_IDS.get(order.asset)
    if active_id is None:
        return f"UnsupportedAsset: IQ Option does not list {order.asset}"
    if order.expiry_at is None:
        return (
            "UnsupportedExpiry: the order has no IQ Option expiry time (expiry_at);"
            " IQ Option options end at a set minute"
        )
    return active_id, order.expiry_at


def _transient(
    order: OrderRequest, code: str, message: str, retry_after: float
) -> TransientFailure:
    return TransientFailure(
        order_id=order.order_id, code=code, message=message, retry_after=retry_after
    )
