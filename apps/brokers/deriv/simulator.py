"""A local Deriv API v3 server: the embedded stack's default broker and the tests' truth.

It speaks the WebSocket protocol of shared/brokers/deriv.md on ``/websockets/v3`` and a
small admin HTTP API on the same port (``/admin/...``), so one address serves the copier,
the official clients, tests, the demo and the benchmark. Every contract sold is kept in a
ledger: the record against which "placed exactly once" is checked.

Why uvicorn rather than ``websockets.serve``: the websockets server refuses HTTP requests
with a body, and the admin API needs POST/PUT bodies on the same port; uvicorn serves an
ASGI app that handles both (its WebSocket side runs on the websockets library anyway).

Time: timestamps are real epoch seconds; ``time_scale`` only shortens how long contracts
run (a 15 s contract settles after 1 s at scale 15), so tests stay fast while reconciling
by purchase time still works.

State: with a data dir (``--data-dir``; `copier up` gives it one under ``DATA_DIR``) the
accounts, balances, contracts and ledger are kept in a journal there
(:mod:`apps.brokers.deriv.sim_journal`) and survive a restart; contracts open at the
restart settle when they are due. Without one (the tests' simulators) they live in memory.

Cost: the simulator shares the benchmark machine with the pipeline it measures, so a
booked contract must cost it little. Requests are answered inline as they arrive and
frames are written synchronously (no task per message); events find their listeners
through indexes (connections by loginid, streams by kind, contracts by loginid), never by
scanning every connection or the ledger; contracts settle from one timer per short slot
of due times, not one sleeping task each; a batch buy prices its parameters once.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import logging
import math
import random
import re
import secrets
import socket
import time
import urllib.parse
import zlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import msgspec
import uvicorn

from apps.brokers.deriv.protocol import PASSTHROUGH_MAX_BYTES
from apps.brokers.deriv.sim_journal import Bought, Journal, Opened, Record, Sold
from apps.core import gc_pacing

CENT = Decimal("0.01")
ZERO = Decimal(0)
# Contracts due within this many real seconds of each other settle together (never
# early, at most this late; at most one nominal second at high time scales).
SETTLE_SLOT_SECONDS = 0.05
TOKEN_PATTERN = re.compile(r"^[\w\-]{1,128}$")

_log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


# --- configuration ----------------------------------------------------------------------


class AccountConfig(msgspec.Struct, frozen=True, kw_only=True):
    loginid: str
    token: str
    currency: str = "USD"
    balance: Decimal = Decimal("10000")
    is_virtual: bool = True


class SymbolConfig(msgspec.Struct, frozen=True, kw_only=True):
    market: Literal["synthetic_index", "forex", "commodities"] = "synthetic_index"
    display_name: str = ""
    min_stake: Decimal = Decimal("0.35")
    max_stake: Decimal = Decimal("50000")
    start_price: float = 1000.0
    volatility: float = 0.001  # relative standard deviation of one tick
    decimals: int = 2
    tick_seconds: float = 2.0
    min_ticks: int | None = 1  # None: no tick contracts (forex)
    max_ticks: int = 10
    min_seconds: int = 15
    max_seconds: int = 86_400


def _default_symbols() -> dict[str, SymbolConfig]:
    synthetic = {
        name: SymbolConfig(display_name=f"Volatility {name[2:]} Index", start_price=1000.0)
        for name in ("R_10", "R_25", "R_50", "R_75", "R_100")
    }
    one_second = {
        f"1HZ{v}V": SymbolConfig(display_name=f"Volatility {v} (1s) Index", tick_seconds=1.0)
        for v in (10, 25, 50, 75, 100)
    }
    forex = {
        f"frx{pair}": SymbolConfig(
            market="forex",
            display_name=f"{pair[:3]}/{pair[3:]}",
            start_price=price,
            volatility=0.0001,
            decimals=5,
            tick_seconds=1.0,
            min_ticks=None,
            min_seconds=60,
        )
        for pair, price in (
            ("EURUSD", 1.08),
            ("GBPUSD", 1.27),
            ("USDJPY", 151.2),
            ("AUDUSD", 0.66),
            ("USDCAD", 1.36),
            ("EURGBP", 0.85),
        )
    }
    gold = {
        "frxXAUUSD": SymbolConfig(
            market="commodities",
            display_name="Gold/USD",
            min_stake=Decimal("0.50"),  # deriv.md: 0.50 on frxXAUUSD
            start_price=2350.0,
            decimals=2,
            tick_seconds=1.0,
            min_ticks=None,
            min_seconds=60,
        )
    }
    return (
        synthetic | one_second | {"BOOM500": SymbolConfig(display_name="Boom 500")} | forex | gold
    )


# (limit, window seconds) pairs per call category; deriv.md's fixture values by default.
def _default_rate_limits() -> dict[str, list[tuple[int, float]]]:
    return {
        "general": [(180, 60.0), (14_400, 3_600.0)],
        "outcome": [(25, 60.0), (1_500, 3_600.0)],
        "pricing": [(80, 60.0), (3_600, 3_600.0)],
    }


class SimConfig(msgspec.Struct, kw_only=True):
    accounts: list[AccountConfig] = msgspec.field(default_factory=list)
    symbols: dict[str, SymbolConfig] = msgspec.field(default_factory=_default_symbols)
    rate_limits: dict[str, list[tuple[int, float]]] = msgspec.field(
        default_factory=_default_rate_limits
    )
    max_proposal_subscriptions: int = 5
    payout_rate: Decimal = Decimal("0.95")  # payout = stake * (1 + rate)
    time_scale: float = 1.0
    idle_timeout_seconds: float = 120.0
    seed: int = 42
    forex_closed_at_weekends: bool = True
    # permessage-deflate on the WebSocket: off by default, since on the loopback the
    # stack runs on compressing every frame (and the peer inflating it) is CPU spent
    # for nothing; clients negotiate it, so either way they work unchanged.
    ws_compression: bool = False


def load_config(path: Path | None) -> SimConfig:
    if path is None:
        return SimConfig()
    return msgspec.json.decode(path.read_bytes(), type=SimConfig, strict=False)


class Faults(msgspec.Struct, kw_only=True):
    """Switches that make the simulator misbehave on purpose (PUT /admin/faults)."""

    latency_ms: float = 0.0  # added before every reply
    error_rate: float = 0.0  # share of buys failing with ContractCreationFailure
    error_code: str | None = None  # the next ``error_count`` buys fail with this code
    error_count: int = 0
    drop_after_messages: int | None = None  # close the connection on the Nth next message
    drop_mid_buy: int = 0  # the next N buys are booked, then the connection drops unanswered
    market_closed: bool = False
    force_outcome: Literal["won", "lost"] | None = None


ERROR_MESSAGES: dict[str, str] = {
    "InvalidToken": "The token is invalid.",
    "AuthorizationRequired": "Please log in.",
    "PriceMoved": "The underlying market has moved too much since you priced the contract.",
    "InsufficientBalance": "Your account balance is insufficient to buy this contract.",
    "MarketIsClosed": "This market is presently closed.",
    "ContractBuyValidationError": "The contract is not valid.",
    "OfferingsValidationError": "Trading is not offered for this asset.",
    "ContractCreationFailure": "Cannot create contract",
    "InputValidationFailed": "Input validation failed.",
    "RateLimit": "You have reached the rate limit for buy.",
    "InvalidContractProposal": "Unknown contract proposal",
}


# --- state ------------------------------------------------------------------------------


@dataclass(slots=True)
class Account:
    loginid: str
    token: str
    currency: str
    balance: Decimal
    is_virtual: bool


@dataclass(slots=True)
class Contract:
    contract_id: int
    loginid: str
    currency: str
    symbol: str
    contract_type: str
    buy_price: Decimal
    payout: Decimal
    purchase_time: int
    duration: int
    duration_unit: str
    date_expiry: int
    real_seconds: float
    buy_transaction_id: int
    passthrough: dict[str, Any] | None
    entry_tick: float
    entry_tick_time: int
    exit_tick: float | None = None
    exit_tick_time: int | None = None
    is_expired: int = 0
    is_sold: int = 0
    status: str = "open"
    sell_price: Decimal | None = None
    sell_time: int | None = None
    sell_transaction_id: int | None = None
    # Epoch milliseconds of the booking: purchase_time is whole seconds (Deriv's form),
    # too coarse for the fan-out benchmark's placement latencies.
    booked_ms: float = 0.0
    # Made once at booking (see Terms): every receipt, listing and update repeats them.
    shortcode: str = ""
    longcode: str = ""

    @property
    def profit(self) -> Decimal:
        if self.sell_price is None:
            return ZERO
        return self.sell_price - self.buy_price

    def open_contract(self) -> dict[str, Any]:
        sell_price = self.sell_price
        profit = ZERO if sell_price is None else sell_price - self.buy_price
        sell_transaction_id = self.sell_transaction_id
        return {
            "contract_id": self.contract_id,
            "contract_type": self.contract_type,
            "currency": self.currency,
            "underlying": self.symbol,
            "buy_price": self.buy_price,
            "payout": self.payout,
            "bid_price": sell_price if self.is_sold else ZERO,
            "profit": profit,
            "profit_percentage": (profit / self.buy_price * 100).quantize(CENT),
            "is_expired": self.is_expired,
            "is_settleable": self.is_expired,
            "is_sold": self.is_sold,
            "status": self.status,
            "sell_price": sell_price,
            "sell_time": self.sell_time,
            "entry_tick": self.entry_tick,
            "entry_tick_time": self.entry_tick_time,
            "exit_tick": self.exit_tick,
            "exit_tick_time": self.exit_tick_time,
            "date_start": self.purchase_time,
            "date_expiry": self.date_expiry,
            "purchase_time": self.purchase_time,
            "transaction_ids": (
                {"buy": self.buy_transaction_id, "sell": sell_transaction_id}
                if sell_transaction_id
                else {"buy": self.buy_transaction_id}
            ),
            "shortcode": self.shortcode,
            "longcode": self.longcode,
        }

    def ledger_row(self) -> dict[str, Any]:
        return {
            "loginid": self.loginid,
            "contract_id": self.contract_id,
            "symbol": self.symbol,
            "contract_type": self.contract_type,
            "stake": self.buy_price,
            "payout": self.payout,
            "currency": self.currency,
            "purchase_time": self.purchase_time,
            "purchase_time_ms": self.booked_ms,
            "transaction_id": self.buy_transaction_id,
            "passthrough": self.passthrough,
            "status": self.status,
            "sell_price": self.sell_price,
            "profit": self.profit if self.is_sold else None,
        }


@dataclass(slots=True)
class Terms:
    """Validated and priced contract parameters: what a proposal quotes and a buy books."""

    contract_type: str
    currency: Any  # as asked for; a buy checks it against the account's
    symbol: str
    duration: int
    duration_unit: str
    seconds: float
    ask_price: Decimal
    payout: Decimal
    _longcode: str | None = None
    _shortcode: tuple[int, str] | None = None  # (purchase_time, shortcode) last made

    def longcode(self) -> str:
        if self._longcode is None:
            word = "higher" if self.contract_type == "CALL" else "lower"
            unit = "ticks" if self.duration_unit == "t" else "seconds"
            self._longcode = (
                f"Win payout if {self.symbol} is strictly {word} than entry spot at "
                f"{self.duration} {unit} after contract start time."
            )
        return self._longcode

    def shortcode(self, purchase_time: int, date_expiry: int) -> str:
        """Deriv's form: TYPE_SYMBOL_PAYOUT_START_EXPIRY_BARRIER_0 (barrier S0P = at spot).

        A batch books its contracts within the same second: made once for all of them.
        """
        made = self._shortcode
        if made is not None and made[0] == purchase_time:
            return made[1]
        expiry = f"{self.duration}T" if self.duration_unit == "t" else str(date_expiry)
        code = (
            f"{self.contract_type}_{self.symbol.upper()}_{self.payout}_"
            f"{purchase_time}_{expiry}_S0P_0"
        )
        self._shortcode = (purchase_time, code)
        return code

    def as_stake_params(self) -> dict[str, Any]:
        """Parameters that price to these terms again (a stored proposal being bought)."""
        return {
            "contract_type": self.contract_type,
            "currency": self.currency,
            "symbol": self.symbol,
            "duration": self.duration,
            "duration_unit": self.duration_unit,
            "amount": self.ask_price,
            "basis": "stake",
        }


@dataclass(slots=True)
class BuyPlan:
    """A buy request's shared part, checked once however many accounts it is for.

    The checks run in the order a single buy makes them; the currency check (the only
    account-dependent one before the balance) splits them in two.
    """

    failure: ApiFailure | None = None  # failed before the currency check
    currency: Any = None
    late_failure: ApiFailure | None = None  # failed after it
    terms: Terms | None = None


class PriceFeed:
    """A deterministic random walk per symbol, advanced lazily as (scaled) time passes.

    Seeded from the config seed and the symbol name, so a run is reproducible and no
    background task burns CPU while nobody trades.
    """

    def __init__(self, symbols: dict[str, SymbolConfig], seed: int, time_scale: float) -> None:
        self._symbols = symbols
        self._seed = seed
        self._time_scale = time_scale
        self._origin = time.monotonic()
        self._walks: dict[str, list[float]] = {}
        self._rngs: dict[str, random.Random] = {}

    def tick_index(self, symbol: str, at: float | None = None) -> int:
        elapsed = (time.monotonic() if at is None else at) - self._origin
        return int(elapsed * self._time_scale / self._symbols[symbol].tick_seconds)

    def price_at(self, symbol: str, index: int) -> float:
        cfg = self._symbols[symbol]
        walk = self._walks.get(symbol)
        if walk is None:
            walk = self._walks[symbol] = [cfg.start_price]
            # Not for security: a reproducible market, seeded per symbol.
            self._rngs[symbol] = random.Random(self._seed ^ zlib.crc32(symbol.encode()))  # noqa: S311
        rng = self._rngs[symbol]
        while len(walk) <= index:
            walk.append(round(walk[-1] * (1 + rng.gauss(0.0, cfg.volatility)), cfg.decimals))
        return walk[index]

    def spot(self, symbol: str) -> float:
        return self.price_at(symbol, self.tick_index(symbol))


class RateLimiter:
    """Sliding-window counters per (loginid or connection, category, window)."""

    def __init__(self, limits: dict[str, list[tuple[int, float]]]) -> None:
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


CATEGORY_OF: dict[str, str] = {
    "portfolio": "outcome",
    "statement": "outcome",
    "profit_table": "outcome",
    "proposal": "pricing",
    "proposal_open_contract": "pricing",
}
# Calls answered without counting: the keep-alive must never be what trips a limit.
UNCOUNTED = frozenset({"ping", "forget", "forget_all", "website_status"})


class ApiFailure(Exception):
    """An error reply: ``{"error": {"code", "message", "details"?}}``."""

    def __init__(self, code: str, message: str | None = None, details: Any = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message or ERROR_MESSAGES.get(code, code)
        self.details = details


_subscription_order = itertools.count()


@dataclass(eq=False)
class Subscription:
    id: str
    kind: str  # msg_type of the stream
    request: dict[str, Any]
    contract_id: int | None = None
    order: int = field(default_factory=lambda: next(_subscription_order))
    _head: str | None = field(default=None, repr=False)
    _tail: str = field(default="", repr=False)

    def frame(self, body_json: str) -> str:
        """The stream message for an encoded body: exactly what encoding
        ``_reply(request, kind, body, self)`` gives, with the envelope encoded once."""
        if self._head is None:
            envelope = _encode(_envelope(self.request, self.kind))  # '{"echo_req":...}'
            self._head = f"{envelope[:-1]},{_encode(self.kind)}:"
            self._tail = f',"subscription":{_encode({"id": self.id})}}}'
        return self._head + body_json + self._tail


@dataclass(eq=False)
class Connection:
    """One WebSocket peer.

    Writes are synchronous and keep their order: :meth:`push` hands the frame to the
    transport at once (uvicorn's send only suspends while the peer is not reading, so an
    eagerly started task almost always finishes on the spot, with no scheduling); while a
    write is suspended, later frames wait in ``_backlog`` behind it.
    """

    send_event: Send
    loginid: str | None = None
    closed: bool = False
    last_seen: float = field(default_factory=time.monotonic)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    # Indexes over ``subscriptions``, so an event finds its streams without a scan.
    balance_streams: dict[str, Subscription] = field(default_factory=dict)
    all_contracts_streams: dict[str, Subscription] = field(default_factory=dict)
    contract_streams: dict[int, dict[str, Subscription]] = field(default_factory=dict)
    proposal_streams: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    key: str = field(default_factory=lambda: f"conn-{secrets.token_hex(4)}")
    _backlog: deque[str] | None = None

    # subscriptions ----------------------------------------------------------------------

    def add_stream(self, sub: Subscription) -> None:
        self.subscriptions[sub.id] = sub
        if sub.kind == "balance":
            self.balance_streams[sub.id] = sub
        elif sub.kind == "proposal":
            self.proposal_streams += 1
        elif sub.kind == "proposal_open_contract":
            if sub.contract_id is None:
                self.all_contracts_streams[sub.id] = sub
            else:
                self.contract_streams.setdefault(sub.contract_id, {})[sub.id] = sub

    def end_stream(self, sub_id: str) -> Subscription | None:
        sub = self.subscriptions.pop(sub_id, None)
        if sub is None:
            return None
        if sub.kind == "balance":
            del self.balance_streams[sub_id]
        elif sub.kind == "proposal":
            self.proposal_streams -= 1
        elif sub.kind == "proposal_open_contract":
            if sub.contract_id is None:
                del self.all_contracts_streams[sub_id]
            else:
                streams = self.contract_streams[sub.contract_id]
                del streams[sub_id]
                if not streams:
                    del self.contract_streams[sub.contract_id]
        return sub

    def end_all_streams(self) -> None:
        self.subscriptions.clear()
        self.balance_streams.clear()
        self.all_contracts_streams.clear()
        self.contract_streams.clear()
        self.proposal_streams = 0

    def streams_of(self, contract_id: int) -> list[Subscription]:
        """This connection's proposal_open_contract streams that follow the contract."""
        own = self.contract_streams.get(contract_id)
        if own is None:
            return list(self.all_contracts_streams.values())
        if not self.all_contracts_streams:
            return list(own.values())
        both = [*self.all_contracts_streams.values(), *own.values()]
        return sorted(both, key=_opened)  # in the order they were opened

    # writing ----------------------------------------------------------------------------

    def push(self, payload: Any) -> None:
        if not self.closed:
            self.push_text(_encode(payload))

    def push_text(self, text: str) -> None:
        if self.closed:
            return
        if self._backlog is not None:  # a write is waiting for the peer: queue behind it
            self._backlog.append(text)
            return
        task = _eager(_call(self.send_event, {"type": "websocket.send", "text": text}))
        if task.done():
            if task.cancelled() or task.exception() is not None:
                self.closed = True  # the peer vanished; the receive loop cleans up
            return
        self._backlog = deque()
        self.keep(asyncio.create_task(self._drain(task)))

    async def _drain(self, pending: asyncio.Task[None]) -> None:
        try:
            await pending
            while self._backlog and not self.closed:
                text = self._backlog.popleft()
                await self.send_event({"type": "websocket.send", "text": text})
        except Exception:
            self.closed = True
        finally:
            self._backlog = None

    def drop(self, code: int = 1011, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        task = _eager(
            _call(self.send_event, {"type": "websocket.close", "code": code, "reason": reason})
        )
        if task.done():
            _quiet(task)
        else:
            self.keep(task)
            task.add_done_callback(_quiet)

    def keep(self, task: asyncio.Task[None]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


def _opened(sub: Subscription) -> int:
    return sub.order


async def _call(send: Send, event: Message) -> None:
    await send(event)


def _eager(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task that runs at once and is usually done before this returns (no scheduling)."""
    return asyncio.eager_task_factory(asyncio.get_running_loop(), coro)


def _quiet(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a close to a vanished peer is not worth a log line


_encoder = msgspec.json.Encoder(decimal_format="number")


def _encode(payload: Any) -> str:
    return _encoder.encode(payload).decode()


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ApiFailure("InputValidationFailed", details={name: "Must be a number."})
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ApiFailure("InputValidationFailed", details={name: "Must be a number."}) from None


# --- the simulator ----------------------------------------------------------------------


class DerivSimulator:
    """State and behaviour, independent of the transport (see :class:`SimulatorApp`)."""

    def __init__(self, config: SimConfig, journal: Journal | None = None) -> None:
        self.config = config
        self.faults = Faults()
        self.accounts: dict[str, Account] = {}
        self.by_token: dict[str, Account] = {}
        self.ledger: list[Contract] = []
        self.contracts: dict[int, Contract] = {}
        self.connections: set[Connection] = set()
        # Indexes, so that no event costs O(connections) or O(ledger):
        self._connections_of: dict[str, set[Connection]] = {}  # by authorised loginid
        self._open_of: dict[str, dict[int, Contract]] = {}  # by loginid, in purchase order
        self._sold_of: dict[str, list[Contract]] = {}  # by loginid, in purchase order
        self.feed = PriceFeed(config.symbols, config.seed, config.time_scale)
        self.limiter = RateLimiter(config.rate_limits)
        self.stats: dict[str, int] = {"messages": 0, "buys": 0, "rate_limited": 0, "drops": 0}
        self._proposals: dict[str, Terms] = {}
        self._next_contract_id = 250_000_000
        self._next_transaction_id = 500_000_000
        self._next_login = 90_000_001
        # Not for security: decides which buys fail under the error_rate fault.
        self._rng = random.Random(config.seed)  # noqa: S311
        # Settlement: contracts due in the same slot of a fine grid of real time settle
        # together from one timer (not one sleeping task per contract).
        scale = config.time_scale
        self._slot_seconds = min(SETTLE_SLOT_SECONDS, 1 / scale) if scale > 0 else 1.0
        self._due: dict[int, list[Contract]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        for acc in config.accounts:
            self._add_account(acc.loginid, acc.token, acc.currency, acc.balance, acc.is_virtual)
        self.journal = journal
        if journal is not None:
            self._restore(journal.replay())

    def _restore(self, records: list[Record]) -> None:
        """Replay the journal: accounts, then each buy and sale as it happened; the
        contracts still open settle when they are due (at once if that has passed)."""
        for record in records:
            if isinstance(record, Opened):
                self._add_account(
                    record.loginid,
                    record.token,
                    record.currency,
                    record.balance,
                    record.is_virtual,
                )
                if record.loginid[2:].isdigit():
                    self._next_login = max(self._next_login, int(record.loginid[2:]) + 1)
            elif isinstance(record, Bought):
                account = self.accounts.get(record.loginid)
                if account is None:  # an account of a former SimConfig
                    _log.warning(
                        "journal: contract %s of unknown %s", record.contract_id, record.loginid
                    )
                    continue
                account.balance -= record.buy_price
                contract = _contract_of(record)
                self.ledger.append(contract)
                self.contracts[contract.contract_id] = contract
                self._open_of.setdefault(account.loginid, {})[contract.contract_id] = contract
                self._next_contract_id = max(self._next_contract_id, contract.contract_id)
                self._next_transaction_id = max(
                    self._next_transaction_id, contract.buy_transaction_id
                )
            elif (sold := self.contracts.get(record.contract_id)) is not None:
                _apply_sale(sold, record)
                self._file_as_sold(sold)
                if sold.status == "won":
                    self.accounts[sold.loginid].balance += sold.payout
                self._next_transaction_id = max(
                    self._next_transaction_id, record.sell_transaction_id
                )
        now = time.time()
        for open_ones in self._open_of.values():
            for contract in open_ones.values():
                due = contract.booked_ms / 1000 + contract.real_seconds
                self._settle_later(contract, max(0.0, due - now))

    # accounts ---------------------------------------------------------------------------

    def _add_account(
        self, loginid: str, token: str, currency: str, balance: Decimal, is_virtual: bool
    ) -> Account:
        account = Account(loginid, token, currency, balance.quantize(CENT), is_virtual)
        self.accounts[loginid] = account
        self.by_token[token] = account
        return account

    def create_account(self, currency: str, balance: Decimal) -> Account:
        loginid = f"CR{self._next_login}"
        self._next_login += 1
        account = self._add_account(loginid, secrets.token_urlsafe(18), currency, balance, True)
        if self.journal is not None:
            self.journal.append(Opened(loginid, account.token, currency, account.balance, True))
        return account

    # connections ------------------------------------------------------------------------

    def connect(self, conn: Connection) -> None:
        self.connections.add(conn)

    def disconnect(self, conn: Connection) -> None:
        conn.closed = True
        self.connections.discard(conn)
        self._set_login(conn, None)
        conn.end_all_streams()

    def _set_login(self, conn: Connection, loginid: str | None) -> None:
        previous = conn.loginid
        if previous == loginid:
            return
        if previous is not None:
            peers = self._connections_of[previous]
            peers.discard(conn)
            if not peers:
                del self._connections_of[previous]
        conn.loginid = loginid
        if loginid is not None:
            self._connections_of.setdefault(loginid, set()).add(conn)

    # dispatch ---------------------------------------------------------------------------

    def receive(self, conn: Connection, text: str) -> None:
        """One incoming message: answered on the spot (every call is synchronous), or,
        under the latency fault, in a task of its own so that a connection's delayed
        requests still overlap as they would against a slow server."""
        if self.faults.latency_ms > 0:
            conn.keep(asyncio.create_task(self.handle_text(conn, text)))
            return
        try:
            parsed = self._parse(conn, text)
            if parsed is not None:
                self._dispatch(conn, *parsed)
        except Exception:  # a bug answers nothing but must not end the connection
            _log.exception("handling %.200s failed", text)

    async def handle_text(self, conn: Connection, text: str) -> None:
        parsed = self._parse(conn, text)
        if parsed is None:
            return
        if self.faults.latency_ms > 0:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        self._dispatch(conn, *parsed)

    def _parse(self, conn: Connection, text: str) -> tuple[dict[str, Any], str | None] | None:
        """Decode and check the envelope; an envelope error is answered here (no latency)."""
        try:
            request = msgspec.json.decode(text)
        except msgspec.DecodeError:
            conn.push(_error_reply({}, "error", "InputValidationFailed", "Invalid JSON."))
            return None
        if not isinstance(request, dict):
            conn.push(_error_reply({}, "error", "InputValidationFailed", "Not an object."))
            return None
        method = next((k for k in request if k in HANDLERS), None)
        req_id = request.get("req_id")
        if req_id is not None and (isinstance(req_id, bool) or not isinstance(req_id, int)):
            failure = ApiFailure("InputValidationFailed", details={"req_id": "Must be integer."})
        else:
            passthrough = request.get("passthrough")
            if passthrough is None or (
                isinstance(passthrough, dict) and len(_encode(passthrough)) <= PASSTHROUGH_MAX_BYTES
            ):
                return request, method
            failure = ApiFailure("InputValidationFailed", details={"passthrough": "Too large."})
        conn.push(
            _error_reply(request, method or "error", failure.code, failure.message, failure.details)
        )
        return None

    def _dispatch(self, conn: Connection, request: dict[str, Any], method: str | None) -> None:
        if conn.closed:  # nothing is done for a connection that is gone
            return
        msg_type = method or "error"
        try:
            if method is None:
                raise ApiFailure("UnrecognisedRequest", "Unrecognised request.")
            if method not in UNCOUNTED:
                key = conn.loginid or conn.key
                if not self.limiter.allow(key, CATEGORY_OF.get(method, "general")):
                    self.stats["rate_limited"] += 1
                    raise ApiFailure("RateLimit", f"You have reached the rate limit for {method}.")
            body, subscription = HANDLERS[method](self, conn, request)
        except ApiFailure as failure:
            conn.push(
                _error_reply(request, msg_type, failure.code, failure.message, failure.details)
            )
            return
        if body is _NO_REPLY:
            return
        conn.push(_reply(request, msg_type, body, subscription))

    def _require_login(self, conn: Connection) -> Account:
        if conn.loginid is None:
            raise ApiFailure("AuthorizationRequired")
        return self.accounts[conn.loginid]

    # calls ------------------------------------------------------------------------------

    def _authorize(self, conn: Connection, req: dict[str, Any]) -> Handled:
        token = req.get("authorize")
        if not isinstance(token, str) or not TOKEN_PATTERN.match(token):
            raise ApiFailure("InputValidationFailed", details={"authorize": "Invalid token."})
        account = self.by_token.get(token)
        if account is None:
            raise ApiFailure("InvalidToken")
        self._set_login(conn, account.loginid)
        return {
            "loginid": account.loginid,
            "currency": account.currency,
            "balance": account.balance,
            "is_virtual": int(account.is_virtual),
            "email": f"{account.loginid.lower()}@example.invalid",
            "fullname": f"Simulated {account.loginid}",
            "country": "id",
            "landing_company_name": "virtual" if account.is_virtual else "svg",
            "scopes": ["read", "trade"],
            "account_list": [
                {
                    "loginid": account.loginid,
                    "currency": account.currency,
                    "is_virtual": int(account.is_virtual),
                }
            ],
            "user_id": int(account.loginid[2:]) if account.loginid[2:].isdigit() else 1,
        }, None

    def _ping(self, conn: Connection, req: dict[str, Any]) -> Handled:
        return "pong", None

    def _website_status(self, conn: Connection, req: dict[str, Any]) -> Handled:
        limits = self.config.rate_limits

        def per(category: str, seconds: float) -> int:
            return next((n for n, w in limits.get(category, []) if w == seconds), 0)

        return {
            "site_status": "up",
            "api_call_limits": {
                "max_proposal_subscription": {
                    "applies_to": "subscribing to proposal concurrently",
                    "max": self.config.max_proposal_subscriptions,
                },
                "max_requestes_general": {  # (sic), as Deriv spells it
                    "applies_to": "rest of calls",
                    "hourly": per("general", 3600),
                    "minutely": per("general", 60),
                },
                "max_requests_outcome": {
                    "applies_to": "portfolio, statement and proposal",
                    "hourly": per("outcome", 3600),
                    "minutely": per("outcome", 60),
                },
                "max_requests_pricing": {
                    "applies_to": "proposal and proposal_open_contract",
                    "hourly": per("pricing", 3600),
                    "minutely": per("pricing", 60),
                },
            },
            "currencies_config": {
                "USD": {"fractional_digits": 2, "type": "fiat", "is_suspended": 0}
            },
        }, None

    def _contracts_for(self, conn: Connection, req: dict[str, Any]) -> Handled:
        symbol = req.get("contracts_for")
        cfg = self.config.symbols.get(symbol) if isinstance(symbol, str) else None
        if cfg is None or not isinstance(symbol, str):
            raise ApiFailure("InvalidSymbol", "Symbol is not supported.")
        available = []
        for contract_type, display in (("CALL", "Higher"), ("PUT", "Lower")):
            if cfg.min_ticks is not None:
                available.append(
                    _offering(
                        symbol,
                        cfg,
                        contract_type,
                        display,
                        "tick",
                        f"{cfg.min_ticks}t",
                        f"{cfg.max_ticks}t",
                    )
                )
            available.append(
                _offering(
                    symbol,
                    cfg,
                    contract_type,
                    display,
                    "intraday",
                    f"{cfg.min_seconds}s",
                    "1d" if cfg.max_seconds >= 86_400 else f"{cfg.max_seconds}s",
                )
            )
        now = int(time.time())
        return {
            "available": available,
            "close": now + 3600 if self._is_open(cfg) else now,
            "open": now - 3600 if self._is_open(cfg) else now + 3600,
            "feed_license": "realtime",
            "hit_count": len(available),
            "spot": self.feed.spot(symbol),
        }, None

    def _balance(self, conn: Connection, req: dict[str, Any]) -> Handled:
        account = self._require_login(conn)
        sub = self._subscribe(conn, req, "balance") if req.get("subscribe") == 1 else None
        return _balance_body(account), sub

    def _proposal(self, conn: Connection, req: dict[str, Any]) -> Handled:
        terms = self._terms(req, self.accounts.get(conn.loginid or ""))
        proposal_id = secrets.token_hex(16)
        self._proposals[proposal_id] = terms
        sub = None
        if req.get("subscribe") == 1:
            if conn.proposal_streams >= self.config.max_proposal_subscriptions:
                raise ApiFailure("RateLimit", "You have reached the limit of proposal streams.")
            sub = self._subscribe(conn, req, "proposal")
        ask = terms.ask_price
        symbol = terms.symbol
        return {
            "id": proposal_id,
            "ask_price": ask,
            "display_value": f"{ask:.2f}",
            "payout": terms.payout,
            "spot": self.feed.spot(symbol),
            "spot_time": int(time.time()),
            "date_start": int(time.time()),
            "longcode": f"Win payout if {symbol} is strictly "
            f"{'higher' if terms.contract_type == 'CALL' else 'lower'} than entry spot.",
        }, sub

    def _buy(self, conn: Connection, req: dict[str, Any]) -> Handled:
        account = self._require_login(conn)
        self._injected_failure()
        terms = self._terms_for(self._plan_buy(req, single_use=True), account)
        if isinstance(terms, ApiFailure):
            raise terms
        contract = self._book(account, terms, req.get("passthrough"))
        if self.faults.drop_mid_buy > 0:
            # The sale is booked; the reply is lost with the connection (fault switch).
            self.faults.drop_mid_buy -= 1
            self.stats["drops"] += 1
            conn.drop(1011, "dropped mid-buy")
            return _NO_REPLY, None
        sub = None
        if req.get("subscribe") == 1:
            sub = self._subscribe(conn, req, "proposal_open_contract", contract.contract_id)
        return {
            "balance_after": account.balance,
            "buy_price": contract.buy_price,
            "contract_id": contract.contract_id,
            "longcode": contract.longcode,
            "payout": contract.payout,
            "purchase_time": contract.purchase_time,
            "shortcode": contract.shortcode,
            "start_time": contract.purchase_time,
            "transaction_id": contract.buy_transaction_id,
        }, sub

    def _buy_multiple(self, conn: Connection, req: dict[str, Any]) -> Handled:
        self._require_login(conn)
        tokens = req.get("tokens")
        if (
            not isinstance(tokens, list)
            or not tokens
            or not all(isinstance(t, str) for t in tokens)
        ):
            raise ApiFailure("InputValidationFailed", details={"tokens": "Must be a list."})
        self._injected_failure()
        plan = self._plan_buy(req, single_use=False)  # validated and priced once
        passthrough = req.get("passthrough")
        results: list[dict[str, Any]] = []
        for token in tokens:
            account = self.by_token.get(token)
            if account is None:
                results.append(
                    {"code": "InvalidToken", "message_to_client": "Invalid token", "token": token}
                )
                continue
            terms = self._terms_for(plan, account)
            if isinstance(terms, ApiFailure):
                results.append(
                    {"code": terms.code, "message_to_client": terms.message, "token": token}
                )
                continue
            contract = self._book(account, terms, passthrough)
            results.append(
                {
                    "buy_price": contract.buy_price,
                    "contract_id": contract.contract_id,
                    "longcode": contract.longcode,
                    "payout": contract.payout,
                    "purchase_time": contract.purchase_time,
                    "shortcode": contract.shortcode,
                    "start_time": contract.purchase_time,
                    "token": token,
                    "transaction_id": contract.buy_transaction_id,
                }
            )
        if not isinstance(req.get("parameters"), dict):  # a proposal id is single-use
            self._proposals.pop(str(req.get("buy_contract_for_multiple_accounts")), None)
        if self.faults.drop_mid_buy > 0:
            self.faults.drop_mid_buy -= 1
            self.stats["drops"] += 1
            conn.drop(1011, "dropped mid-buy")
            return _NO_REPLY, None
        return {"result": results}, None

    def _proposal_open_contract(self, conn: Connection, req: dict[str, Any]) -> Handled:
        account = self._require_login(conn)
        contract_id = req.get("contract_id")
        if contract_id is not None:
            contract = self.contracts.get(contract_id) if isinstance(contract_id, int) else None
            if contract is None or contract.loginid != account.loginid:
                raise ApiFailure(
                    "ContractNotFound", "This contract was not found among your open positions."
                )
            sub = None
            if req.get("subscribe") == 1 and not contract.is_sold:
                sub = self._subscribe(conn, req, "proposal_open_contract", contract.contract_id)
            return contract.open_contract(), sub
        # Without contract_id: one message per open contract; the first is the reply.
        open_ones = list(self._open_of.get(account.loginid, {}).values())
        sub = (
            self._subscribe(conn, req, "proposal_open_contract")
            if req.get("subscribe") == 1
            else None
        )
        for contract in open_ones[1:]:
            conn.push(_reply(req, "proposal_open_contract", contract.open_contract(), sub))
        return (open_ones[0].open_contract() if open_ones else {}), sub

    def _portfolio(self, conn: Connection, req: dict[str, Any]) -> Handled:
        account = self._require_login(conn)
        contracts = [
            {
                "app_id": 1,
                "buy_price": c.buy_price,
                "contract_id": c.contract_id,
                "contract_type": c.contract_type,
                "currency": c.currency,
                "date_start": c.purchase_time,
                "expiry_time": c.date_expiry,
                "longcode": c.longcode,
                "payout": c.payout,
                "purchase_time": c.purchase_time,
                "shortcode": c.shortcode,
                "symbol": c.symbol,
                "transaction_id": c.buy_transaction_id,
            }
            for c in self._open_of.get(account.loginid, {}).values()
        ]
        return {"contracts": contracts}, None

    def _profit_table(self, conn: Connection, req: dict[str, Any]) -> Handled:
        account = self._require_login(conn)
        date_from = req.get("date_from")
        date_to = req.get("date_to")
        # Sold contracts in purchase order; purchase times only grow along it, so the
        # date range is found by bisection and the page by index, never by a full scan.
        sold = self._sold_of.get(account.loginid, [])
        low = (
            bisect.bisect_left(sold, date_from, key=_purchase_time)
            if isinstance(date_from, int)
            else 0
        )
        high = (
            bisect.bisect_right(sold, date_to, key=_purchase_time)
            if isinstance(date_to, int)
            else len(sold)
        )
        rows = range(low, high)  # sliced exactly like the list of those rows would be
        if req.get("sort", "DESC") == "DESC":
            rows = rows[::-1]
        offset = req.get("offset", 0) if isinstance(req.get("offset"), int) else 0
        limit = req.get("limit", 50) if isinstance(req.get("limit"), int) else 50
        page = [sold[i] for i in rows[offset : offset + min(limit, 500)]]
        describe = req.get("description") == 1
        transactions = [
            {
                "app_id": 1,
                "buy_price": c.buy_price,
                "contract_id": c.contract_id,
                "contract_type": c.contract_type,
                "payout": c.payout,
                "purchase_time": c.purchase_time,
                "sell_price": c.sell_price,
                "sell_time": c.sell_time,
                "transaction_id": c.buy_transaction_id,
            }
            | ({"shortcode": c.shortcode, "longcode": c.longcode} if describe else {})
            for c in page
        ]
        return {"count": len(transactions), "transactions": transactions}, None

    def _forget(self, conn: Connection, req: dict[str, Any]) -> Handled:
        return int(conn.end_stream(str(req.get("forget"))) is not None), None

    def _forget_all(self, conn: Connection, req: dict[str, Any]) -> Handled:
        kinds = req.get("forget_all")
        wanted = {kinds} if isinstance(kinds, str) else set(kinds or [])
        gone = [sid for sid, s in conn.subscriptions.items() if s.kind in wanted]
        for sid in gone:
            conn.end_stream(sid)
        return gone, None

    # buying -----------------------------------------------------------------------------

    def _injected_failure(self) -> None:
        if self.faults.error_count > 0 and self.faults.error_code:
            self.faults.error_count -= 1
            raise ApiFailure(self.faults.error_code)
        if self.faults.error_rate > 0 and self._rng.random() < self.faults.error_rate:
            raise ApiFailure("ContractCreationFailure")

    def _terms(self, params: dict[str, Any], account: Account | None) -> Terms:
        """Validate contract parameters and price them (the shared core of proposal/buy)."""
        contract_type, symbol, cfg = self._offered(params)
        currency = params["currency"]
        if account is not None and currency != account.currency:
            raise _currency_mismatch(currency)
        return self._priced(params, contract_type, symbol, cfg)

    def _offered(self, params: dict[str, Any]) -> tuple[str, str, SymbolConfig]:
        """The checks before the account's currency: fields, contract type, asset, hours."""
        missing = [k for k in ("contract_type", "currency", "symbol") if k not in params]
        if missing:
            raise ApiFailure(
                "InputValidationFailed",
                f"Input validation failed: {', '.join(missing)}",
                {k: "Missing required field." for k in missing},
            )
        contract_type = params["contract_type"]
        if contract_type not in ("CALL", "PUT", "CALLE", "PUTE"):
            raise ApiFailure("InputValidationFailed", details={"contract_type": "Not allowed."})
        symbol = params["symbol"]
        cfg = self.config.symbols.get(symbol) if isinstance(symbol, str) else None
        if cfg is None:
            raise ApiFailure("OfferingsValidationError", "Trading is not offered for this asset.")
        if not self._is_open(cfg):
            raise ApiFailure("MarketIsClosed")
        return contract_type, symbol, cfg

    def _priced(
        self, params: dict[str, Any], contract_type: str, symbol: str, cfg: SymbolConfig
    ) -> Terms:
        """The checks after the account's currency: duration, amount, basis, stake."""
        duration = params.get("duration")
        unit = params.get("duration_unit", "s")
        if isinstance(duration, bool) or not isinstance(duration, int) or duration <= 0:
            raise ApiFailure("InputValidationFailed", details={"duration": "Must be positive."})
        seconds: float
        if unit == "t":
            if cfg.min_ticks is None or not cfg.min_ticks <= duration <= cfg.max_ticks:
                raise ApiFailure(
                    "OfferingsValidationError", "Trading is not offered for this duration."
                )
            seconds = duration * cfg.tick_seconds
        elif unit in ("s", "m", "h", "d"):
            seconds = duration * {"s": 1, "m": 60, "h": 3600, "d": 86_400}[unit]
            if not cfg.min_seconds <= seconds <= cfg.max_seconds:
                raise ApiFailure(
                    "OfferingsValidationError", "Trading is not offered for this duration."
                )
        else:
            raise ApiFailure("InputValidationFailed", details={"duration_unit": "Not allowed."})
        amount = _decimal(params.get("amount"), "amount").quantize(CENT)
        basis = params.get("basis", "stake")
        rate = 1 + self.config.payout_rate
        if basis == "stake":
            stake, payout = amount, (amount * rate).quantize(CENT)
        elif basis == "payout":
            stake, payout = (amount / rate).quantize(CENT), amount
        else:
            raise ApiFailure("InputValidationFailed", details={"basis": "Not allowed."})
        if stake < cfg.min_stake:
            raise ApiFailure(
                "ContractBuyValidationError",
                f"Please enter a stake amount that's at least {cfg.min_stake}.",
            )
        if stake > cfg.max_stake:
            raise ApiFailure(
                "ContractBuyValidationError", f"Maximum stake allowed is {cfg.max_stake}."
            )
        return Terms(
            contract_type=contract_type,
            currency=params["currency"],
            symbol=symbol,
            duration=duration,
            duration_unit=unit,
            seconds=seconds,
            ask_price=stake,
            payout=payout,
        )

    def _plan_buy(self, req: dict[str, Any], *, single_use: bool) -> BuyPlan:
        """Everything of a buy that does not depend on the account, done once."""
        key = "buy" if "buy" in req else "buy_contract_for_multiple_accounts"
        try:
            if "price" not in req:
                raise ApiFailure(
                    "InputValidationFailed", details={"price": "Missing required field."}
                )
            price = _decimal(req.get("price"), "price")
            params = req.get("parameters")
            if not isinstance(params, dict):
                proposal_id = str(req.get(key))
                stored = self._proposals.get(proposal_id)
                if stored is None:
                    raise ApiFailure("InvalidContractProposal")
                if single_use:
                    del self._proposals[proposal_id]
                # Re-check what may have changed since pricing (market hours, currency).
                params = stored.as_stake_params()
            contract_type, symbol, cfg = self._offered(params)
        except ApiFailure as failure:
            return BuyPlan(failure=failure)
        plan = BuyPlan(currency=params["currency"])
        try:
            terms = self._priced(params, contract_type, symbol, cfg)
            if price < terms.ask_price:
                raise ApiFailure(
                    "PriceMoved",
                    f"The underlying market has moved too much since you priced the contract. "
                    f"The contract price has changed from {price} to {terms.ask_price}.",
                )
        except ApiFailure as failure:
            plan.late_failure = failure
        else:
            plan.terms = terms
        return plan

    def _terms_for(self, plan: BuyPlan, account: Account) -> Terms | ApiFailure:
        """The plan's terms for one account, or why that account cannot buy them."""
        if plan.failure is not None:
            return plan.failure
        if plan.currency != account.currency:
            return _currency_mismatch(plan.currency)
        if plan.late_failure is not None:
            return plan.late_failure
        terms = plan.terms
        assert terms is not None
        if account.balance < terms.ask_price:
            return ApiFailure(
                "InsufficientBalance",
                f"Your account balance ({account.currency}{account.balance}) is insufficient "
                f"to buy this contract ({account.currency}{terms.ask_price}).",
            )
        return terms

    def _book(self, account: Account, terms: Terms, passthrough: Any) -> Contract:
        now = time.time()
        purchase_time = int(now)
        symbol = terms.symbol
        index = self.feed.tick_index(symbol) + 1  # entry is the next tick
        account.balance -= terms.ask_price
        self._next_contract_id += 1
        self._next_transaction_id += 2
        seconds = terms.seconds
        date_expiry = purchase_time + int(seconds)
        contract = Contract(
            contract_id=self._next_contract_id,
            loginid=account.loginid,
            currency=account.currency,
            symbol=symbol,
            contract_type=terms.contract_type,
            buy_price=terms.ask_price,
            payout=terms.payout,
            purchase_time=purchase_time,
            duration=terms.duration,
            duration_unit=terms.duration_unit,
            date_expiry=date_expiry,
            real_seconds=seconds / self.config.time_scale,
            buy_transaction_id=self._next_transaction_id,
            passthrough=passthrough if isinstance(passthrough, dict) else None,
            entry_tick=self.feed.price_at(symbol, index),
            entry_tick_time=purchase_time,
            booked_ms=now * 1000,
            shortcode=terms.shortcode(purchase_time, date_expiry),
            longcode=terms.longcode(),
        )
        self.ledger.append(contract)
        self.contracts[contract.contract_id] = contract
        self._open_of.setdefault(account.loginid, {})[contract.contract_id] = contract
        self.stats["buys"] += 1
        if self.journal is not None:
            self.journal.append(_record(Bought, contract))
        self._settle_later(contract, contract.real_seconds)
        self._notify_balance(account)
        return contract

    def _settle_later(self, contract: Contract, seconds: float) -> None:
        """Schedule the contract into the first slot at or after ``seconds`` from now."""
        loop = asyncio.get_running_loop()
        slot = math.ceil((loop.time() + seconds) / self._slot_seconds)
        due = self._due.get(slot)
        if due is None:
            due = self._due[slot] = []
            self._timers[slot] = loop.call_at(slot * self._slot_seconds, self._settle_slot, slot)
        due.append(contract)

    def _settle_slot(self, slot: int) -> None:
        del self._timers[slot]
        for contract in self._due.pop(slot):
            try:
                self._settle(contract)
            except Exception:  # one broken contract must not keep the others open
                _log.exception("settling contract %s failed", contract.contract_id)

    def _settle(self, contract: Contract) -> None:
        contract.is_expired = 1
        self._notify_contract(contract)
        symbol = contract.symbol
        exit_tick = self.feed.spot(symbol)
        forced = self.faults.force_outcome
        if forced is not None:
            pip = 10 ** -self.config.symbols[symbol].decimals
            up = (forced == "won") == contract.contract_type.startswith("CALL")
            exit_tick = round(contract.entry_tick + (pip if up else -pip), 10)
        if contract.contract_type == "CALL":
            won = exit_tick > contract.entry_tick
        elif contract.contract_type == "PUT":
            won = exit_tick < contract.entry_tick
        elif contract.contract_type == "CALLE":
            won = exit_tick >= contract.entry_tick
        else:
            won = exit_tick <= contract.entry_tick
        now = int(time.time())
        contract.exit_tick = exit_tick
        contract.exit_tick_time = now
        contract.is_sold = 1
        contract.status = "won" if won else "lost"
        contract.sell_price = contract.payout if won else Decimal("0.00")
        contract.sell_time = now
        self._next_transaction_id += 2
        contract.sell_transaction_id = self._next_transaction_id
        self._file_as_sold(contract)
        if self.journal is not None:
            self.journal.append(_record(Sold, contract))
        account = self.accounts[contract.loginid]
        if won:
            account.balance += contract.payout
            self._notify_balance(account)
        self._notify_contract(contract)

    def _file_as_sold(self, contract: Contract) -> None:
        open_ones = self._open_of[contract.loginid]
        del open_ones[contract.contract_id]
        if not open_ones:
            del self._open_of[contract.loginid]
        sold = self._sold_of.setdefault(contract.loginid, [])
        if not sold or sold[-1].contract_id < contract.contract_id:
            sold.append(contract)  # the usual case: sold in purchase order
        else:  # a shorter contract bought later was sold first
            bisect.insort(sold, contract, key=_contract_id)

    # streams ----------------------------------------------------------------------------

    def _subscribe(
        self, conn: Connection, req: dict[str, Any], kind: str, contract_id: int | None = None
    ) -> Subscription:
        sub = Subscription(
            id=secrets.token_hex(16), kind=kind, request=req, contract_id=contract_id
        )
        conn.add_stream(sub)
        return sub

    def _notify_contract(self, contract: Contract) -> None:
        """Push the contract's state to its account's streams: O(its subscribers)."""
        body = None
        for conn in self._connections_of.get(contract.loginid, ()):
            streams = conn.streams_of(contract.contract_id)
            if not streams:
                continue
            if body is None:  # built and encoded once, only if someone listens
                body = _encode(contract.open_contract())
            for sub in streams:
                conn.push_text(sub.frame(body))
                if contract.is_sold and sub.contract_id is not None:
                    conn.end_stream(sub.id)  # Deriv ends the stream once sold

    def _notify_balance(self, account: Account) -> None:
        # Deferred to after the current step, so the buy reply (or the sold update) that
        # caused the change goes out first; the body is this moment's balance.
        body = None
        for conn in self._connections_of.get(account.loginid, ()):
            if not conn.balance_streams:
                continue
            if body is None:
                body = _encode(_balance_body(account))
            for sub in conn.balance_streams.values():
                asyncio.get_running_loop().call_soon(conn.push_text, sub.frame(body))

    def _is_open(self, cfg: SymbolConfig) -> bool:
        if self.faults.market_closed:
            return False
        if cfg.market != "synthetic_index" and self.config.forex_closed_at_weekends:
            return datetime.now(UTC).weekday() < 5  # Saturday, Sunday closed
        return True

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._due.clear()
        if self.journal is not None:
            await self.journal.close()


Handled = tuple[Any, Subscription | None]


def _record[R: (Bought, Sold)](kind: type[R], contract: Contract) -> R:
    """The journal's record of a contract bought or sold: those fields of the contract."""
    return kind(*(getattr(contract, name) for name in kind.__struct_fields__))


def _contract_of(bought: Bought) -> Contract:
    terms = Terms(
        contract_type=bought.contract_type,
        currency=bought.currency,
        symbol=bought.symbol,
        duration=bought.duration,
        duration_unit=bought.duration_unit,
        seconds=float(bought.date_expiry - bought.purchase_time),
        ask_price=bought.buy_price,
        payout=bought.payout,
    )
    return Contract(
        **msgspec.structs.asdict(bought),
        entry_tick_time=bought.purchase_time,
        shortcode=terms.shortcode(bought.purchase_time, bought.date_expiry),
        longcode=terms.longcode(),
    )


def _apply_sale(contract: Contract, sold: Sold) -> None:
    for name in Sold.__struct_fields__:
        setattr(contract, name, getattr(sold, name))
    contract.is_expired = contract.is_sold = 1
    contract.exit_tick_time = sold.sell_time


def _currency_mismatch(currency: Any) -> ApiFailure:
    return ApiFailure("ContractBuyValidationError", f"Currency {currency} is not your account's.")


def _purchase_time(contract: Contract) -> int:
    return contract.purchase_time


def _contract_id(contract: Contract) -> int:
    return contract.contract_id


_NO_REPLY: Any = object()

HANDLERS: dict[str, Callable[[DerivSimulator, Connection, dict[str, Any]], Handled]] = {
    "authorize": DerivSimulator._authorize,
    "ping": DerivSimulator._ping,
    "website_status": DerivSimulator._website_status,
    "contracts_for": DerivSimulator._contracts_for,
    "balance": DerivSimulator._balance,
    "proposal_open_contract": DerivSimulator._proposal_open_contract,
    "proposal": DerivSimulator._proposal,
    "buy_contract_for_multiple_accounts": DerivSimulator._buy_multiple,
    "buy": DerivSimulator._buy,
    "portfolio": DerivSimulator._portfolio,
    "profit_table": DerivSimulator._profit_table,
    "forget_all": DerivSimulator._forget_all,
    "forget": DerivSimulator._forget,
}


def _offering(
    symbol: str,
    cfg: SymbolConfig,
    contract_type: str,
    display: str,
    expiry_type: str,
    min_duration: str,
    max_duration: str,
) -> dict[str, Any]:
    return {
        "barrier_category": "euro_atm",
        "barriers": 0,
        "contract_category": "callput",
        "contract_category_display": "Up/Down",
        "contract_display": display,
        "contract_type": contract_type,
        "exchange_name": "RANDOM" if cfg.market == "synthetic_index" else "FOREX",
        "expiry_type": expiry_type,
        "market": cfg.market,
        "max_contract_duration": max_duration,
        "min_contract_duration": min_duration,
        "sentiment": "up" if contract_type == "CALL" else "down",
        "start_type": "spot",
        "submarket": "random_index" if cfg.market == "synthetic_index" else "major_pairs",
        "underlying_symbol": symbol,
    }


def _balance_body(account: Account) -> dict[str, Any]:
    return {"balance": account.balance, "currency": account.currency, "loginid": account.loginid}


def _envelope(request: dict[str, Any], msg_type: str) -> dict[str, Any]:
    reply: dict[str, Any] = {"echo_req": request, "msg_type": msg_type}
    if "req_id" in request:
        reply["req_id"] = request["req_id"]
    if "passthrough" in request:
        reply["passthrough"] = request["passthrough"]
    return reply


def _reply(
    request: dict[str, Any], msg_type: str, body: Any, sub: Subscription | None
) -> dict[str, Any]:
    reply = _envelope(request, msg_type)
    reply[msg_type] = body
    if sub is not None:
        reply["subscription"] = {"id": sub.id}
    return reply


def _error_reply(
    request: dict[str, Any], msg_type: str, code: str, message: str, details: Any = None
) -> dict[str, Any]:
    reply = _envelope(request, msg_type)
    reply["error"] = {"code": code, "message": message} | ({"details": details} if details else {})
    return reply


# --- transport: one ASGI app for the WebSocket API and the admin HTTP API -------------


class NewAccount(msgspec.Struct, kw_only=True):
    currency: str = "USD"
    balance: Decimal = Decimal("10000")


class NewAccounts(NewAccount, kw_only=True):
    count: int = 1


class SimulatorApp:
    def __init__(self, simulator: DerivSimulator) -> None:
        self.sim = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        if scope["path"].rstrip("/") != "/websockets/v3":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        conn = Connection(send_event=send)
        self.sim.connect(conn)
        watchdog = asyncio.create_task(self._idle_watchdog(conn))
        try:
            while not conn.closed:
                event = await receive()
                if event["type"] != "websocket.receive":
                    break
                conn.last_seen = time.monotonic()
                text = event.get("text") or (event.get("bytes") or b"").decode()
                self.sim.stats["messages"] += 1
                faults = self.sim.faults
                if faults.drop_after_messages is not None:
                    faults.drop_after_messages -= 1
                    if faults.drop_after_messages <= 0:
                        faults.drop_after_messages = None
                        self.sim.stats["drops"] += 1
                        conn.drop(1011, "dropped by fault switch")
                        break
                self.sim.receive(conn, text)
        finally:
            watchdog.cancel()
            self.sim.disconnect(conn)

    async def _idle_watchdog(self, conn: Connection) -> None:
        timeout = self.sim.config.idle_timeout_seconds
        while not conn.closed:
            idle = time.monotonic() - conn.last_seen
            if idle >= timeout:
                conn.drop(1000, "idle timeout")
                return
            await asyncio.sleep(timeout - idle)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        method, path = scope["method"], scope["path"].rstrip("/")
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode())
        try:
            status, payload = self._route(method, path, body, query)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            status, payload = 400, {"error": str(exc)}
        data = _encoder.encode(payload)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})

    def _route(
        self, method: str, path: str, body: bytes, query: dict[str, list[str]] | None = None
    ) -> tuple[int, Any]:
        sim = self.sim
        if (method, path) == ("GET", "/health"):
            return 200, {"status": "ok"}
        if (method, path) == ("POST", "/admin/accounts"):
            new = msgspec.json.decode(body or b"{}", type=NewAccount, strict=False)
            account = sim.create_account(new.currency, new.balance)
            return 201, {
                "loginid": account.loginid,
                "token": account.token,
                "currency": account.currency,
                "balance": account.balance,
            }
        if (method, path) == ("POST", "/admin/accounts/batch"):
            # Benchmarks need thousands of accounts; one request instead of one each.
            batch = msgspec.json.decode(body or b"{}", type=NewAccounts, strict=False)
            if not 1 <= batch.count <= 1_000_000:
                return 400, {"error": "count must be 1..1000000"}
            made = [sim.create_account(batch.currency, batch.balance) for _ in range(batch.count)]
            return 201, {"accounts": [{"loginid": a.loginid, "token": a.token} for a in made]}
        if (method, path) == ("GET", "/admin/accounts"):
            return 200, {"accounts": [_balance_body(a) for a in sim.accounts.values()]}
        if (method, path) == ("GET", "/admin/ledger"):
            # ?since=N: only contracts booked after the first N (benchmarks poll per run).
            since = int((query or {}).get("since", ["0"])[0])
            return 200, {
                "contracts": [c.ledger_row() for c in sim.ledger[since:]],
                "total": len(sim.ledger),
            }
        if (method, path) == ("GET", "/admin/faults"):
            return 200, sim.faults
        if (method, path) == ("PUT", "/admin/faults"):
            changes = msgspec.json.decode(body or b"{}")
            merged = msgspec.structs.asdict(sim.faults) | dict(changes)
            sim.faults = msgspec.convert(merged, Faults)
            return 200, sim.faults
        if (method, path) == ("PUT", "/admin/limits"):
            limits = msgspec.json.decode(body, type=dict[str, list[tuple[int, float]]])
            sim.config.rate_limits.update(limits)
            sim.limiter = RateLimiter(sim.config.rate_limits)
            return 200, sim.config.rate_limits
        if (method, path) == ("GET", "/admin/stats"):
            return 200, sim.stats | {"connections": len(sim.connections)}
        return 404, {"error": f"no route {method} {path}"}


# --- running it -------------------------------------------------------------------------


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host (tests, `copier up`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


class RunningSimulator:
    def __init__(self, simulator: DerivSimulator, server: uvicorn.Server, host: str, port: int):
        self.simulator = simulator
        self.server = server
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/websockets/v3"

    @property
    def admin_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _server(simulator: DerivSimulator, embedded: bool) -> uvicorn.Server:
    config = uvicorn.Config(
        SimulatorApp(simulator),
        ws="websockets-sansio",
        lifespan="off",
        log_level="warning",
        access_log=False,
        ws_max_size=64 * 1024,
        # The simulator sends Deriv's own app-level pongs; protocol pings stay enabled so
        # dead peers are noticed.
        ws_ping_interval=20.0,
        ws_per_message_deflate=simulator.config.ws_compression,
    )
    return _EmbeddedServer(config) if embedded else uvicorn.Server(config)


@contextlib.asynccontextmanager
async def running_simulator(
    config: SimConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    data_dir: Path | None = None,
) -> AsyncIterator[RunningSimulator]:
    """Start the simulator inside the current event loop; port 0 picks a free port;
    its state is kept in ``data_dir`` if one is given."""
    simulator = DerivSimulator(config or SimConfig(), _journal(data_dir))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = _server(simulator, embedded=True)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield RunningSimulator(simulator, server, host, sock.getsockname()[1])
    finally:
        server.should_exit = True
        await simulator.stop()
        await task
        sock.close()


def _journal(data_dir: Path | None) -> Journal | None:
    return None if data_dir is None else Journal(data_dir)


async def serve_forever(
    config: SimConfig, host: str, port: int, data_dir: Path | None = None
) -> None:
    """Run as its own process until SIGINT/SIGTERM (uvicorn handles the signals)."""
    simulator = DerivSimulator(config, _journal(data_dir))
    server = _server(simulator, embedded=False)
    server.config.host, server.config.port = host, port
    print(
        f"Deriv simulator on ws://{host}:{port}/websockets/v3 (admin: http://{host}:{port}/admin)"
    )
    await server.serve()
    await simulator.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Deriv API v3 simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8701)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--time-scale", type=float, default=None)
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="keep accounts and contracts here"
    )
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.time_scale is not None:
        config.time_scale = args.time_scale
    gc_pacing.start()  # a large fan-out's open contracts made each full collection stall it
    asyncio.run(serve_forever(config, args.host, args.port, args.data_dir))


if __name__ == "__main__":
    main()
