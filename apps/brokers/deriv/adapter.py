"""The Deriv broker adapter: places the copier's orders through Deriv API v3.

One order is one ``buy`` with ``parameters`` (a single round trip; no proposal first),
its ``passthrough`` carrying the copier's order and signal ids so every contract in
Deriv's (or the simulator's) ledger traces back to its order. Deriv offers no client
order id that makes a repeated buy harmless, so when a buy's reply is lost the adapter
looks for the contract in ``portfolio``/``profit_table`` before the order may be retried
(concepts.md, "Duplicates").
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any

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
    Placed,
    PlaceOutcome,
    ReconcileResult,
    Rejected,
    Settlement,
    SettlementResult,
    SettlementUnavailable,
    SettlementWatch,
    TransientFailure,
    Uncertain,
    Undecidable,
)
from apps.brokers.bursts import Bursts
from apps.brokers.deriv.protocol import (
    DEFAULT_URL,
    PASSTHROUGH_MAX_BYTES,
    BuyReceipt,
    DerivContract,
    ErrorClass,
    MultiBuyResult,
    PortfolioContract,
    ProfitTableRow,
    classify_error,
    contract_end,
    contract_for,
    symbol_of_shortcode,
)
from apps.brokers.deriv.session import (
    ConnectionLost,
    DerivSession,
    SessionRejected,
    SessionUnavailable,
)
from apps.brokers.deriv.watch import AccountWatches
from apps.brokers.orders import BookingDelay, too_late
from apps.brokers.reconciliation import (
    PlacementMemory,
    SharedListings,
    lost_reply_outcome,
    pick_match,
)
from apps.brokers.sessions import SessionPool, ready
from apps.core.brokers.deriv import MappingError

# Why an order whose session took until too close to its signal's end was not bought.
TOO_LATE = "signal expired before the broker could book it"
# A buy's error code for a token Deriv no longer accepts (a revoked or deleted token).
REFUSED_TOKEN_CODE = "InvalidToken"  # noqa: S105 - an error code, not a secret
# A batch's passthrough names every order (batch_passthrough) and Deriv caps passthrough
# at 3,500 bytes: 64 orders with the copier's ids take ~3,200 even with 16-character
# loginids (26-character subscription ids, ULIDs). Each batch call costs the worker, the
# broker and Redis a fixed amount besides its orders, so batches are as large as the
# passthrough allows.
BATCH_MAX_ORDERS = 64
# Loginids are CR/VRTC and 7 - 8 digits; one not known yet is counted this long.
_LOGINID_BOUND = 16


class DerivAdapter(BrokerAdapter):
    kind = "deriv"

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        app_id: int = 1,
        reply_timeout: float = 10.0,
        ping_interval: float = 30.0,
        reconcile_timeout: float = 10.0,
        reconcile_grace: float = 0.3,
        use_batch: bool = True,
        watch_delay: float = 1.0,
        watch_lead: float = 60.0,
        watch_burst_wait: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.app_id = app_id
        self.reply_timeout = reply_timeout
        self.ping_interval = ping_interval
        self.reconcile_timeout = reconcile_timeout
        self.reconcile_grace = reconcile_grace
        self.use_batch = use_batch
        self.clock = clock
        self._sessions = SessionPool(self._open_session)
        # Orders placed and sent by this process, contracts known to be an order's, by
        # loginid.
        self.memory = PlacementMemory[str](clock)
        # A buy is sent only if the broker's recent answers say it is booked in time.
        self.booking_delay = BookingDelay()
        # One portfolio + profit_table per account at a time, whatever the number of its
        # orders being reconciled.
        self.listings = SharedListings[str, _Listing]()
        self.bursts = Bursts()
        self.watches = AccountWatches(
            self.session,
            delay=watch_delay,
            lead=watch_lead,
            bursts=self.bursts,
            burst_wait=watch_burst_wait,
            reply_timeout=reply_timeout,
            clock=clock,
        )

    # sessions ---------------------------------------------------------------------------

    def session(self, account: BrokerAccount) -> DerivSession:
        return self._sessions.get(account.token)

    def _open_session(self, token: str) -> DerivSession:
        return DerivSession(self.url, token, app_id=self.app_id, ping_interval=self.ping_interval)

    async def connect(self, account: BrokerAccount) -> Rejected | TransientFailure | None:
        return await ready(self.session(account))

    async def close(self) -> None:
        await self.watches.close()
        await self._sessions.close()

    # placing ----------------------------------------------------------------------------

    def _too_late(self, order: OrderRequest) -> bool:
        return too_late(order.valid_until, self.clock(), self.booking_delay.seconds())

    def _precheck(
        self, order: OrderRequest, contract: DerivContract | MappingError | None = None
    ) -> PlaceOutcome | DerivContract:
        """What stops ``order`` before the broker, else its contract (``contract``: the
        one already mapped for orders of the same terms)."""
        known = self.memory.placed(order.order_id)
        if known is not None:  # placed by this process already: report, never rebuy
            return known
        if self._too_late(order):
            return Expired(order_id=order.order_id, last_message="signal expired")
        if contract is None:
            contract = contract_for(
                order.asset, order.direction, order.expiry, order.stake, order.currency
            )
        if isinstance(contract, MappingError):
            return Rejected(order_id=order.order_id, code=contract.code, message=contract.message)
        return contract

    async def _ready_session(self, order: OrderRequest) -> DerivSession | PlaceOutcome:
        session = self.session(order.account)
        connected = await self.connect(order.account)
        if connected is not None:
            return msgspec.structs.replace(connected, order_id=order.order_id)
        pause = session.cooldown_remaining()
        if pause > 0:
            return TransientFailure(
                order_id=order.order_id,
                code="RateLimit",
                message="account cooling down after a rate limit",
                retry_after=pause,
            )
        return session

    async def place(self, order: OrderRequest) -> PlaceOutcome:
        with self.bursts.placing():
            return await self._place_one(order)

    async def _place_one(self, order: OrderRequest) -> PlaceOutcome:
        contract = self._precheck(order)
        if not isinstance(contract, DerivContract):
            return contract
        session = await self._ready_session(order)
        if not isinstance(session, DerivSession):
            return session
        if self._too_late(order):  # connecting took that long
            return Expired(order_id=order.order_id, last_message=TOO_LATE)
        request = {
            "buy": "1",
            "price": order.stake,  # basis stake: the ask is the stake; never pay more
            "parameters": msgspec.to_builtins(contract, builtin_types=(Decimal,)),
            "passthrough": {
                "order_id": order.order_id,
                "signal_id": order.signal_id,
                "channel_id": order.channel_id,
            },
        }
        self.memory.sent(order.order_id)
        sent = self.clock()
        try:
            reply = await session.request(request, reply_within=self.reply_timeout)
        except ConnectionLost as lost:
            if not lost.sent:
                return _transient(order, "ConnectionLost", "not sent; reconnecting", 0.0)
            return await self._after_lost_reply(order, timed_out=False)
        except TimeoutError:
            await session.abort()  # a reply this late is not trusted; start clean
            return await self._after_lost_reply(order, timed_out=True)
        self.booking_delay.observe(self.clock() - sent)
        error = reply.get("error")
        if error:
            return self._failure(order, session, str(error.get("code")), error.get("message"))
        session.cooled()
        receipt = msgspec.convert(reply["buy"], BuyReceipt, strict=False)
        return self.memory.record(
            session.loginid or order.account.login,
            order.order_id,
            Placed(
                order_id=order.order_id,
                contract_id=str(receipt.contract_id),
                buy_price=receipt.buy_price,
                payout=receipt.payout,
                purchase_time=receipt.purchase_time,
                broker_ref=str(receipt.transaction_id),
                expiry_at=contract_end(receipt.start_time or receipt.purchase_time, order.expiry),
                balance_after=receipt.balance_after,
            ),
        )

    def _failure(
        self, order: OrderRequest, session: DerivSession, code: str, message: Any
    ) -> Rejected | TransientFailure:
        text = str(message or code)
        match classify_error(code):
            case ErrorClass.PERMANENT:
                # InvalidToken on a buy: a batch's row for a token Deriv no longer accepts.
                return Rejected(
                    order_id=order.order_id,
                    code=code,
                    message=text,
                    account_refused=code == REFUSED_TOKEN_CODE,
                )
            case ErrorClass.REAUTHORISE:
                session.authorized = False
                return _transient(order, code, text, 0.0)
            case ErrorClass.TRANSIENT if code == "RateLimit":
                return _transient(order, code, text, session.cool_down())
            case _:
                return _transient(order, code, text, 0.1)

    async def _after_lost_reply(self, order: OrderRequest, *, timed_out: bool) -> PlaceOutcome:
        result = await self.reconcile(order)
        return lost_reply_outcome(order.order_id, result, timed_out=timed_out, noun="contract")

    # batch ------------------------------------------------------------------------------

    async def place_many(self, orders: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        """Batch same-terms orders of one signal (``buy_contract_for_multiple_accounts``).

        Subscribers' stakes usually differ, so only equal-stake orders share a request.
        """
        with self.bursts.placing():
            return await self._place_many(orders)

    async def _place_many(self, orders: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        if not self.use_batch:
            return await super().place_many(orders)
        groups: defaultdict[tuple[Any, ...], list[int]] = defaultdict(list)
        for i, order in enumerate(orders):
            key = (
                order.signal_id,
                order.asset,
                order.direction,
                order.expiry,
                order.stake,
                order.currency,
            )
            groups[key].append(i)
        jobs: list[tuple[list[int], Any]] = []
        for indexes in groups.values():
            for chunk in self._batches(orders, _one_per_account(orders, indexes)):
                batch = [orders[i] for i in chunk]
                job = self._place_batch(batch) if len(batch) > 1 else self._single(batch[0])
                jobs.append((chunk, job))
            duplicates = set(indexes) - {i for c, _ in jobs for i in c}
            jobs.extend(([i], self._single(orders[i])) for i in sorted(duplicates))
        results: list[PlaceOutcome | None] = [None] * len(orders)
        for (chunk, _), outcomes in zip(
            jobs, await asyncio.gather(*(job for _, job in jobs)), strict=True
        ):
            for i, outcome in zip(chunk, outcomes, strict=True):
                results[i] = outcome
        return [r for r in results if r is not None]

    def _batches(self, orders: Sequence[OrderRequest], indexes: list[int]) -> Iterable[list[int]]:
        """``indexes`` (one signal, one order per account) in batches whose passthrough
        fits, at most BATCH_MAX_ORDERS each."""
        if not indexes:
            return
        first = orders[indexes[0]]
        # Named as batch_passthrough names them (if every order is named by its suffix,
        # so is every batch of them; else each is named whole at most).
        cut = _named_cut(first.signal_id, [orders[i].order_id for i in indexes])
        room = PASSTHROUGH_MAX_BYTES - _header_bytes(first)
        batch: list[int] = []
        size = 0
        for i in indexes:
            order = orders[i]
            # One entry: "loginid":"name",
            entry = (
                (len(self._loginid(order.account)) or _LOGINID_BOUND)
                + len(order.order_id)
                - cut
                + 6
            )
            if batch and (len(batch) == BATCH_MAX_ORDERS or size + entry > room):
                yield batch
                batch, size = [], 0
            batch.append(i)
            size += entry
        if batch:
            yield batch

    async def _single(self, order: OrderRequest) -> list[PlaceOutcome]:
        return [await self.place(order)]

    async def _place_batch(self, orders: list[OrderRequest]) -> list[PlaceOutcome]:
        ready: list[OrderRequest] = []
        outcomes: dict[str, PlaceOutcome] = {}
        # place_many grouped them by terms: one mapping serves every order of the batch.
        one = orders[0]
        terms = contract_for(one.asset, one.direction, one.expiry, one.stake, one.currency)
        contract = terms if isinstance(terms, DerivContract) else None
        for order in orders:
            checked = self._precheck(order, terms)
            if isinstance(checked, DerivContract):
                ready.append(order)
            else:
                outcomes[order.order_id] = checked
        # The batch travels over one authorised socket; the other accounts need no session
        # of their own (their tokens are in the request). A loginid names each order in
        # passthrough: the projection knows it, else authorising the account tells it.
        unnamed = [o for o in ready if not self._loginid(o.account)]
        if unnamed:
            opened = await asyncio.gather(*(self._ready_session(o) for o in unnamed))
            for order, session in zip(unnamed, opened, strict=True):
                if not isinstance(session, DerivSession):
                    outcomes[order.order_id] = session
            ready = [o for o in ready if o.order_id not in outcomes]
        lead = await self._lead_session(ready, outcomes) if ready else None
        ready = [o for o in ready if o.order_id not in outcomes]
        if lead is not None and contract is not None:
            if len(ready) == 1:
                outcomes[ready[0].order_id] = await self.place(ready[0])
            elif ready:
                outcomes |= await self._send_batch(ready, lead, contract)
        return [outcomes[o.order_id] for o in orders]

    def _loginid(self, account: BrokerAccount) -> str:
        return account.login or self.session(account).loginid or ""

    async def _lead_session(
        self, orders: list[OrderRequest], outcomes: dict[str, PlaceOutcome]
    ) -> DerivSession | None:
        """An open session among the batch's accounts, else the first that opens.

        A rejected login (bad token) rejects that account's order and the next account
        is tried; a transient failure (broker unreachable, cooling down) is every order's,
        so a broker that is down costs one connection attempt per batch, not one per order.
        """
        for order in orders:
            session = self._sessions.existing(order.account.token)
            if (
                session is not None
                and session.is_open
                and session.authorized
                and session.cooldown_remaining() <= 0
            ):
                return session
        for order in orders:
            ready = await self._ready_session(order)
            if isinstance(ready, DerivSession):
                return ready
            if isinstance(ready, Rejected):
                outcomes[order.order_id] = ready
                continue
            for other in orders:
                if other.order_id not in outcomes:
                    outcomes[other.order_id] = msgspec.structs.replace(
                        ready, order_id=other.order_id
                    )
            return None
        return None

    async def _send_batch(
        self, orders: list[OrderRequest], lead: DerivSession, contract: DerivContract
    ) -> dict[str, PlaceOutcome]:
        late: dict[str, PlaceOutcome] = {  # connecting took that long
            o.order_id: Expired(order_id=o.order_id, last_message=TOO_LATE)
            for o in orders
            if self._too_late(o)
        }
        batch = [o for o in orders if o.order_id not in late]
        if not batch:
            return late
        return late | await self._send_timely_batch(batch, lead, contract)

    async def _send_timely_batch(
        self, batch: list[OrderRequest], lead: DerivSession, contract: DerivContract
    ) -> dict[str, PlaceOutcome]:
        lead_order = batch[0]
        by_token = {order.account.token: order for order in batch}
        request = {
            "buy_contract_for_multiple_accounts": "1",
            "price": lead_order.stake,
            "parameters": msgspec.to_builtins(contract, builtin_types=(Decimal,)),
            "tokens": list(by_token),
            "passthrough": batch_passthrough(
                lead_order.signal_id,
                lead_order.channel_id,
                {self._loginid(order.account): order.order_id for order in batch},
            ),
        }
        for order in batch:
            self.memory.sent(order.order_id)
        sent = self.clock()
        try:
            reply = await lead.request(request, reply_within=self.reply_timeout)
        except (ConnectionLost, TimeoutError) as exc:
            if isinstance(exc, ConnectionLost) and not exc.sent:
                return {o.order_id: _transient(o, "ConnectionLost", "not sent", 0.0) for o in batch}
            if isinstance(exc, TimeoutError):
                await lead.abort()
            timed_out = isinstance(exc, TimeoutError)
            lost = await asyncio.gather(
                *(self._after_lost_reply(o, timed_out=timed_out) for o in batch)
            )
            return {o.order_id: outcome for o, outcome in zip(batch, lost, strict=True)}
        self.booking_delay.observe(self.clock() - sent)
        error = reply.get("error")
        if error:
            code, message = str(error.get("code")), error.get("message")
            return {o.order_id: self._failure(o, lead, code, message) for o in batch}
        outcomes: dict[str, PlaceOutcome] = {}
        rows = msgspec.convert(
            reply["buy_contract_for_multiple_accounts"]["result"],
            list[MultiBuyResult],
            strict=False,
        )
        for row in rows:
            order = by_token[row.token]
            if row.contract_id is None or row.code:
                code = row.code or "ContractCreationFailure"
                outcomes[order.order_id] = self._failure(
                    order, self.session(order.account), code, row.message_to_client
                )
                continue
            outcomes[order.order_id] = self.memory.record(
                self._loginid(order.account),
                order.order_id,
                Placed(
                    order_id=order.order_id,
                    contract_id=str(row.contract_id),
                    buy_price=row.buy_price or order.stake,
                    payout=row.payout or Decimal(0),
                    purchase_time=row.purchase_time or int(self.clock()),
                    broker_ref=str(row.transaction_id),
                    expiry_at=contract_end(row.start_time or row.purchase_time, order.expiry),
                ),
            )
        for order in batch:  # a token Deriv did not answer for: nothing known was bought
            outcomes.setdefault(
                order.order_id,
                Uncertain(order_id=order.order_id, message="no result for this account"),
            )
        return outcomes

    # reconciliation ---------------------------------------------------------------------

    async def reconcile(
        self, order: OrderRequest, claims: ContractClaims | None = None
    ) -> ReconcileResult:
        known = self.memory.placed(order.order_id)
        if known is not None:
            return Found(placed=known)
        contract = contract_for(
            order.asset, order.direction, order.expiry, order.stake, order.currency
        )
        if isinstance(contract, MappingError):
            return NotFound()  # it could never have been sent
        session = self.session(order.account)
        deadline = time.monotonic() + self.reconcile_timeout
        since = self.memory.since(order.order_id, order.valid_until)
        for attempt in range(2):
            key = session.loginid or order.account.login or order.account.token[-8:]
            listed = await self.listings.take(
                key,
                since - 2,
                # A buy this process sent itself may be newer than a listing running.
                joinable=attempt == 0 and not self.memory.sent_here(order.order_id),
                list_now=partial(self._list_contracts, session, since - 2, deadline),
            )
            if isinstance(listed, Undecidable):
                return listed
            loginid = session.loginid or order.account.login
            candidates = {
                cid: row for cid, row in listed.items() if _same_terms(row, contract, order)
            }
            hit = await pick_match(
                order.order_id, candidates, self.memory.owners(loginid), claims, "contract"
            )
            if isinstance(hit, Undecidable):
                return hit
            if hit is not None:
                placed = Placed(
                    order_id=order.order_id,
                    contract_id=hit.contract_id,
                    buy_price=hit.buy_price,
                    payout=hit.payout,
                    purchase_time=hit.purchase_time,
                    broker_ref=hit.broker_ref,
                    reconciled=True,
                    expiry_at=hit.expiry_at or contract_end(hit.purchase_time, order.expiry),
                )
                return Found(placed=self.memory.record(loginid, order.order_id, placed))
            if attempt == 0:
                # A buy racing the dropped socket may be listed a moment later.
                await asyncio.sleep(self.reconcile_grace)
        return NotFound()

    async def _list_contracts(
        self, session: DerivSession, since: float, deadline: float
    ) -> dict[int, _Listed] | Undecidable:
        """Open and settled contracts bought since ``since``, keyed by contract id."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Undecidable(reason="could not list the account's contracts in time")
            try:
                await session.ensure_open()
                portfolio, profit = await asyncio.gather(
                    session.request({"portfolio": 1}, reply_within=remaining),
                    session.request(
                        {
                            "profit_table": 1,
                            "description": 1,
                            "date_from": int(since),
                            "limit": 500,
                            "sort": "DESC",
                        },
                        reply_within=remaining,
                    ),
                )
            except SessionRejected as exc:
                return Undecidable(reason=f"cannot log in to reconcile: {exc.message}")
            except SessionUnavailable as exc:
                await asyncio.sleep(min(exc.retry_after, max(remaining, 0.0)))
                continue
            except (ConnectionLost, TimeoutError):
                await asyncio.sleep(0.1)
                continue
            failed = portfolio.get("error") or profit.get("error")
            if failed:
                if failed.get("code") == "RateLimit":
                    await asyncio.sleep(min(1.0, max(remaining, 0.0)))
                    continue
                if failed.get("code") == "AuthorizationRequired":
                    session.authorized = False
                    continue
                return Undecidable(reason=f"listing contracts failed: {failed.get('message')}")
            return _listed(portfolio, profit, since)

    # settlement -------------------------------------------------------------------------

    def watch_settlement(
        self,
        account: BrokerAccount,
        contract_id: str,
        expires_at: float,
        on_settled: OnSettled,
    ) -> SettlementWatch:
        """One stream of all the account's open contracts serves every contract of it
        (:mod:`apps.brokers.deriv.watch`)."""
        return self.watches.watch(account, contract_id, expires_at, on_settled)

    async def follow_settlement(
        self, account: BrokerAccount, contract_id: str
    ) -> Settlement | SettlementUnavailable:
        """Wait for one contract's settlement (a dropped socket is survived: the account's
        stream is reopened and contracts that sold meanwhile are looked up)."""
        done: asyncio.Future[SettlementResult] = asyncio.get_running_loop().create_future()

        def settled(result: SettlementResult) -> None:
            if not done.done():
                done.set_result(result)

        handle = self.watches.watch(account, contract_id, self.clock(), settled)
        try:
            return await done
        finally:
            handle.cancel()


class _Listed(msgspec.Struct, frozen=True, kw_only=True):
    """A contract seen in portfolio/profit_table, with what reconciliation matches on."""

    contract_id: str
    buy_price: Decimal
    payout: Decimal
    purchase_time: int
    broker_ref: str
    symbol: str
    contract_type: str
    expiry_at: int | None = None  # the portfolio says when an open contract ends


type _Listing = dict[int, _Listed] | Undecidable


def _listed(portfolio: dict[str, Any], profit: dict[str, Any], since: float) -> dict[int, _Listed]:
    found: dict[int, _Listed] = {}
    for row in msgspec.convert(
        portfolio["portfolio"].get("contracts", []), list[PortfolioContract], strict=False
    ):
        found[row.contract_id] = _listed_row(row, row.symbol, row.contract_type)
    for sold in msgspec.convert(
        profit["profit_table"].get("transactions", []), list[ProfitTableRow], strict=False
    ):
        if sold.purchase_time >= since:
            contract_type = sold.contract_type or sold.shortcode.split("_", 1)[0]
            found.setdefault(
                sold.contract_id,
                _listed_row(sold, symbol_of_shortcode(sold.shortcode), contract_type),
            )
    return found


def _listed_row(row: PortfolioContract | ProfitTableRow, symbol: str, kind: str) -> _Listed:
    return _Listed(
        contract_id=str(row.contract_id),
        buy_price=row.buy_price,
        payout=row.payout or Decimal(0),
        purchase_time=row.purchase_time,
        broker_ref=str(row.transaction_id),
        symbol=symbol,
        contract_type=kind,
        expiry_at=row.expiry_time if isinstance(row, PortfolioContract) else None,
    )


def _same_terms(listed: _Listed, contract: DerivContract, order: OrderRequest) -> bool:
    return (
        listed.symbol.upper() == contract.symbol.upper()
        and listed.contract_type == contract.contract_type
        and listed.buy_price == order.stake
    )


def _transient(
    order: OrderRequest, code: str, message: str, retry_after: float
) -> TransientFailure:
    return TransientFailure(
        order_id=order.order_id, code=code, message=message, retry_after=retry_after
    )


def _one_per_account(orders: Sequence[OrderRequest], indexes: Iterable[int]) -> list[int]:
    """A batch buys once per token: a second order for the same account goes alone."""
    seen: set[str] = set()
    chosen = []
    for i in indexes:
        if orders[i].account.token not in seen:
            seen.add(orders[i].account.token)
            chosen.append(i)
    return chosen


def _header_bytes(order: OrderRequest) -> int:
    """A batch passthrough without its orders (``{"signal_id":…,"order_ids":{}}``)."""
    return len(order.signal_id) + len(order.channel_id) + 60


def batch_passthrough(signal_id: str, channel_id: str, orders: dict[str, str]) -> dict[str, Any]:
    """What a batch buy carries to trace each contract to its order (loginid → order id).

    The copier's order ids are ``<signal_id>.<subscription_id>`` (``order_id_for``), so a
    batch of one signal names each order by what follows its signal's id (``orders``);
    ids of another shape are named whole (``order_ids``). :func:`order_of_contract`
    reads both.
    """
    cut = _named_cut(signal_id, orders.values())
    if cut:
        named = {login: order_id[cut:] for login, order_id in orders.items()}
        return {"signal_id": signal_id, "channel_id": channel_id, "orders": named}
    return {"signal_id": signal_id, "channel_id": channel_id, "order_ids": orders}


def _named_cut(signal_id: str, order_ids: Iterable[str]) -> int:
    """How much of each order id a batch passthrough leaves out: ``<signal_id>.`` when
    every id starts with it, else nothing (the ids are named whole)."""
    prefix = f"{signal_id}."
    return len(prefix) if all(order_id.startswith(prefix) for order_id in order_ids) else 0


def order_of_contract(passthrough: dict[str, Any], loginid: str) -> str | None:
    """The order a contract was bought for, from its passthrough (single or batch buy)."""
    if "order_id" in passthrough:
        return str(passthrough["order_id"])
    if loginid in passthrough.get("orders", {}):
        return f"{passthrough['signal_id']}.{passthrough['orders'][loginid]}"
    if loginid in passthrough.get("order_ids", {}):
        return str(passthrough["order_ids"][loginid])
    return None
