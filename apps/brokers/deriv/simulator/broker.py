"""The simulated Deriv broker: accounts, contracts, the ledger, settlement and streams.

State and behaviour, independent of the transport (:mod:`apps.brokers.simulation.server`
serves it): each incoming message is parsed, rate-limited and dispatched to its call in
:mod:`.handlers`; a buy books a contract here, and contracts settle from timers. Every
contract sold is kept in ``ledger``, the record against which "placed exactly once" is
checked (``GET /admin/ledger``).

Time: timestamps are real epoch seconds; ``time_scale`` only shortens how long contracts
run (a 15 s contract settles after 1 s at scale 15), so tests stay fast while reconciling
by purchase time still works.

State: with a journal (a data dir) the accounts, balances, contracts and ledger are
replayed from it and survive a restart; contracts open at the restart settle when they
are due. Without one they live in memory.

Cost: the simulator shares the benchmark machine with the pipeline it measures, so a
booked contract must cost it little. Requests are answered inline as they arrive and
frames are written synchronously (no task per message); events find their listeners
through indexes (connections by loginid, streams by kind, contracts by loginid), never by
scanning every connection or the ledger; contracts settle from one timer per short slot
of due times, not one sleeping task each; a batch buy prices its parameters once.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import random
import secrets
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from apps.brokers.deriv.protocol import PASSTHROUGH_MAX_BYTES
from apps.brokers.deriv.simulator.config import SimConfig, SymbolConfig
from apps.brokers.deriv.simulator.connection import Connection, Subscription
from apps.brokers.deriv.simulator.contracts import (
    CENT,
    Account,
    Contract,
    Terms,
    apply_sale,
    by_contract_id,
    contract_of,
    journal_record,
)
from apps.brokers.deriv.simulator.handlers import CATEGORY_OF, HANDLERS, NO_REPLY, UNCOUNTED
from apps.brokers.deriv.simulator.journal import Bought, Journal, Opened, Record, Revoked, Sold
from apps.brokers.deriv.simulator.market import PriceFeed
from apps.brokers.deriv.simulator.wire import ApiFailure, error_reply, reply
from apps.brokers.simulation import Faults, RateLimiter, RateLimits, encode
from apps.brokers.simulation.admin import Send

# Contracts due within this many real seconds of each other settle together (never
# early, at most this late; at most one nominal second at high time scales).
SETTLE_SLOT_SECONDS = 0.05
WEBSOCKET_PATH = "/websockets/v3"

_log = logging.getLogger(__name__)


class DerivSimulator:
    """The broker's state and behaviour; a :class:`SimulatedWebSocketBroker`."""

    websocket_path = WEBSOCKET_PATH

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
        self.open_of: dict[str, dict[int, Contract]] = {}  # by loginid, in purchase order
        self.sold_of: dict[str, list[Contract]] = {}  # by loginid, in purchase order
        self.feed = PriceFeed(config.symbols, config.seed, config.time_scale)
        self.limiter = RateLimiter(config.rate_limits)
        self.stats: dict[str, int] = {"messages": 0, "buys": 0, "rate_limited": 0, "drops": 0}
        self.proposals: dict[str, Terms] = {}
        self._next_contract_id = 250_000_000
        self._next_transaction_id = 500_000_000
        self._next_login = 90_000_001
        # Not for security: decides which buys fail under the error_rate fault.
        self.rng = random.Random(config.seed)  # noqa: S311
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
            elif isinstance(record, Revoked):
                if record.loginid in self.accounts:
                    self._replace_token(self.accounts[record.loginid], record.token)
            elif isinstance(record, Bought):
                account = self.accounts.get(record.loginid)
                if account is None:  # an account of a former SimConfig
                    _log.warning(
                        "journal: contract %s of unknown %s", record.contract_id, record.loginid
                    )
                    continue
                account.balance -= record.buy_price
                contract = contract_of(record)
                self.ledger.append(contract)
                self.contracts[contract.contract_id] = contract
                self.open_of.setdefault(account.loginid, {})[contract.contract_id] = contract
                self._next_contract_id = max(self._next_contract_id, contract.contract_id)
                self._next_transaction_id = max(
                    self._next_transaction_id, contract.buy_transaction_id
                )
            elif (sold := self.contracts.get(record.contract_id)) is not None:
                apply_sale(sold, record)
                self._file_as_sold(sold)
                if sold.status == "won":
                    self.accounts[sold.loginid].balance += sold.payout
                self._next_transaction_id = max(
                    self._next_transaction_id, record.sell_transaction_id
                )
        now = time.time()
        for open_ones in self.open_of.values():
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

    def _replace_token(self, account: Account, token: str) -> None:
        del self.by_token[account.token]
        account.token = token
        self.by_token[token] = account

    def revoke(self, account_id: str) -> dict[str, Any] | None:
        """Revoke the account's token, as a user deleting it at Deriv would: its sockets
        close and the token is refused from now on; a new token (what the user would
        create next) replaces it. ``None`` if there is no such account."""
        account = self.accounts.get(account_id)
        if account is None:
            return None
        self._replace_token(account, secrets.token_urlsafe(18))
        if self.journal is not None:
            self.journal.append(Revoked(account.loginid, account.token))
        for conn in list(self._connections_of.get(account.loginid, ())):
            self.set_login(conn, None)
            conn.drop(1000, "token revoked")
        return {"loginid": account.loginid, "token": account.token}

    # transport and admin API (apps.brokers.simulation) -----------------------------------

    @property
    def idle_timeout_seconds(self) -> float:
        return self.config.idle_timeout_seconds

    def new_peer(self, send: Send) -> Connection:
        return Connection(send_event=send)

    def connection_count(self) -> int:
        return len(self.connections)

    def open_account(self, currency: str, balance: Decimal) -> dict[str, Any]:
        account = self.create_account(currency, balance)
        return {
            "loginid": account.loginid,
            "token": account.token,
            "currency": account.currency,
            "balance": account.balance,
        }

    def open_accounts(self, count: int, currency: str, balance: Decimal) -> list[dict[str, Any]]:
        made = [self.create_account(currency, balance) for _ in range(count)]
        return [{"loginid": a.loginid, "token": a.token} for a in made]

    def account_rows(self) -> list[dict[str, Any]]:
        return [a.balance_body() for a in self.accounts.values()]

    def ledger_rows(self, since: int) -> tuple[list[dict[str, Any]], int]:
        return [c.ledger_row() for c in self.ledger[since:]], len(self.ledger)

    def set_rate_limits(self, limits: RateLimits) -> RateLimits:
        self.config.rate_limits.update(limits)
        self.limiter = RateLimiter(self.config.rate_limits)
        return self.config.rate_limits

    # connections ------------------------------------------------------------------------

    def connect(self, conn: Connection) -> None:
        self.connections.add(conn)

    def disconnect(self, conn: Connection) -> None:
        conn.closed = True
        self.connections.discard(conn)
        self.set_login(conn, None)
        conn.end_all_streams()

    def set_login(self, conn: Connection, loginid: str | None) -> None:
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
            conn.push(error_reply({}, "error", "InputValidationFailed", "Invalid JSON."))
            return None
        if not isinstance(request, dict):
            conn.push(error_reply({}, "error", "InputValidationFailed", "Not an object."))
            return None
        method = next((k for k in request if k in HANDLERS), None)
        req_id = request.get("req_id")
        if req_id is not None and (isinstance(req_id, bool) or not isinstance(req_id, int)):
            failure = ApiFailure("InputValidationFailed", details={"req_id": "Must be integer."})
        else:
            passthrough = request.get("passthrough")
            if passthrough is None or (
                isinstance(passthrough, dict) and len(encode(passthrough)) <= PASSTHROUGH_MAX_BYTES
            ):
                return request, method
            failure = ApiFailure("InputValidationFailed", details={"passthrough": "Too large."})
        conn.push(
            error_reply(request, method or "error", failure.code, failure.message, failure.details)
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
                error_reply(request, msg_type, failure.code, failure.message, failure.details)
            )
            return
        if body is NO_REPLY:
            return
        stream = None if subscription is None else subscription.id
        conn.push(reply(request, msg_type, body, stream))

    def book(self, account: Account, terms: Terms, passthrough: Any) -> Contract:
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
        self.open_of.setdefault(account.loginid, {})[contract.contract_id] = contract
        self.stats["buys"] += 1
        if self.journal is not None:
            self.journal.append(journal_record(Bought, contract))
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
            self.journal.append(journal_record(Sold, contract))
        account = self.accounts[contract.loginid]
        if won:
            account.balance += contract.payout
            self._notify_balance(account)
        self._notify_contract(contract)

    def _file_as_sold(self, contract: Contract) -> None:
        open_ones = self.open_of[contract.loginid]
        del open_ones[contract.contract_id]
        if not open_ones:
            del self.open_of[contract.loginid]
        sold = self.sold_of.setdefault(contract.loginid, [])
        if not sold or sold[-1].contract_id < contract.contract_id:
            sold.append(contract)  # the usual case: sold in purchase order
        else:  # a shorter contract bought later was sold first
            bisect.insort(sold, contract, key=by_contract_id)

    # streams ----------------------------------------------------------------------------

    def subscribe(
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
                body = encode(contract.open_contract())
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
                body = encode(account.balance_body())
            for sub in conn.balance_streams.values():
                asyncio.get_running_loop().call_soon(conn.push_text, sub.frame(body))

    def is_open(self, cfg: SymbolConfig) -> bool:
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
