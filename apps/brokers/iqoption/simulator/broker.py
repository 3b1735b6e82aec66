"""The simulated IQ Option broker: accounts, logins, options, the ledger and settlement.

State and behaviour, independent of the transport (:mod:`apps.brokers.simulation.server`
serves it): the HTTP login and the admin's own calls are answered by :meth:`own_route`;
each WebSocket message is parsed, checked against the socket's login and dispatched to
its call in :mod:`.handlers`; a purchase books an option here and options settle from
timers. Every option sold is kept in ``ledger``, with the ``request_id`` it was bought by:
the record against which "placed exactly once" is checked (``GET /admin/ledger``). IQ
Option has no client order id, so a repeated purchase is a second option.

Time: timestamps are real epoch seconds and an option's ``expired`` is a real whole
minute; ``time_scale`` only shortens how long options run (an option bought 90 s before
its expiry settles 1.5 s after the purchase at scale 60), so tests stay fast.

Sockets: the server sends ``timeSync`` every ``time_sync_seconds`` to every socket and a
``heartbeat`` every ``heartbeat_seconds`` to every logged-in one (before its ssid a client
may send nothing else, so it is not asked to answer), from one ticker (no task per
socket), and closes a socket that leaves ``heartbeat_misses`` of them unanswered in a
row. A socket that never logs in is closed by the idle timeout.

Secrets: passwords and ssids are kept as hashes only (memory and journal alike); the
ledger, the logs and the admin's listings never show them. The only clear password is in
the admin's answer to opening an account.

State: with a journal (a data dir) the accounts, ssids, balances, options and ledger are
replayed from it and survive a restart; options open at the restart settle when due at
this run's time scale (at once if that has passed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import secrets
import time
import urllib.parse
from collections import deque
from decimal import Decimal
from typing import Any, Literal

import msgspec

from apps.brokers.iqoption.simulator.config import SimConfig
from apps.brokers.iqoption.simulator.connection import Connection
from apps.brokers.iqoption.simulator.handlers import HANDLERS, Terms
from apps.brokers.iqoption.simulator.journal import (
    Bought,
    Closed,
    Journal,
    Opened,
    PasswordChanged,
    Record,
    Revoked,
    SessionOpened,
)
from apps.brokers.iqoption.simulator.market import PriceFeed
from apps.brokers.iqoption.simulator.options import (
    CENT,
    ZERO,
    Account,
    Option,
    apply_close,
    bought_record,
    closed_record,
    hash_password,
    hash_ssid,
    option_of,
    password_matches,
)
from apps.brokers.iqoption.simulator.wire import (
    bad_request,
    invalid_credentials,
    logged_in,
    login_limited,
    message,
    verify,
)
from apps.brokers.simulation import (
    Faults,
    HttpReply,
    HttpRequest,
    RateLimiter,
    RateLimits,
    encode,
)
from apps.brokers.simulation.admin import Send

# Options due within this many real seconds of each other settle together (never early,
# at most this late).
SETTLE_SLOT_SECONDS = 0.05
WEBSOCKET_PATH = "/echo/websocket"
LOGIN_PATH = "/api/v2/login"
FIRST_USER_ID = 80_000_001
FIRST_OPTION_ID = 11_000_000_000
MAX_NEW_ACCOUNTS = 1_000_000

_log = logging.getLogger(__name__)


class Switches(msgspec.Struct, kw_only=True):
    """IQ Option's own fault switches, beside the shared :class:`Faults`."""

    suspended_actives: list[int] = msgspec.field(default_factory=list)
    # At most this many logins per identifier per ``login_window_seconds`` (None: no
    # limit); a login over it is answered 429 with the seconds until one is allowed.
    login_limit: int | None = None
    force_equal: bool = False  # force_outcome "equal": every option closes at its entry


_SWITCH_NAMES = frozenset({"suspended_actives", "login_limit"})


class NewIQAccounts(msgspec.Struct, kw_only=True):
    count: int = 1
    balance: Decimal = Decimal("10000")
    currency: str = "USD"
    two_factor: bool = False


class NewPassword(msgspec.Struct, kw_only=True):
    password: str


class IQOptionSimulator:
    """The broker's state and behaviour; a :class:`SimulatedWebSocketBroker`."""

    websocket_path = WEBSOCKET_PATH

    def __init__(self, config: SimConfig, journal: Journal | None = None) -> None:
        self.config = config
        self.faults = Faults()
        self.switches = Switches()
        self.accounts: dict[int, Account] = {}
        self.by_email: dict[str, Account] = {}
        self.ssids: dict[str, int] = {}  # ssid hash → user id
        self.ledger: list[Option] = []
        self.options: dict[int, Option] = {}
        self.options_of: dict[int, list[Option]] = {}  # by balance id, in booking order
        self.connections: set[Connection] = set()
        self._connections_of: dict[int, set[Connection]] = {}  # by logged-in user id
        self.feed = PriceFeed(config.actives, config.seed, config.time_scale)
        self.limiter = RateLimiter(config.rate_limits)
        self.stats: dict[str, int] = {
            "messages": 0,
            "buys": 0,
            "logins": 0,
            "rate_limited": 0,
            "drops": 0,
        }
        self._logins: dict[str, deque[float]] = {}  # login times per identifier
        self._next_user_id = FIRST_USER_ID
        self._next_option_id = FIRST_OPTION_ID
        # Not for security: decides which buys fail under the error_rate fault.
        self.rng = random.Random(config.seed)  # noqa: S311
        scale = config.time_scale
        self._slot_seconds = min(SETTLE_SLOT_SECONDS, 1 / scale) if scale > 0 else 1.0
        self._due: dict[int, list[Option]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._ticker: asyncio.Task[None] | None = None
        self.journal = journal
        if journal is not None:
            self._restore(journal.replay())

    def _restore(self, records: list[Record]) -> None:
        """Replay the journal in order; options still open settle when they are due (at
        once if that has passed)."""
        for record in records:
            match record:
                case Opened():
                    self._add_account(
                        record.user_id,
                        record.email,
                        record.password_hash,
                        record.currency,
                        record.balance,
                        record.two_factor,
                    )
                case PasswordChanged(user_id=user_id, password_hash=password_hash):
                    if (account := self.accounts.get(user_id)) is not None:
                        account.password_hash = password_hash
                    self._forget_ssids(user_id)
                case Revoked(user_id=user_id):
                    self._forget_ssids(user_id)
                case SessionOpened(user_id=user_id, ssid_hash=ssid_hash):
                    self.ssids[ssid_hash] = user_id
                case Bought():
                    self._restore_option(record)
                case Closed():
                    if (closed := self.options.get(record.option_id)) is not None:
                        apply_close(closed, record)
                        self.accounts[closed.user_id].add(closed.balance_id, closed.win_amount)
        now = time.time()
        for option in self.ledger:
            if not option.win:
                due = option.created_ms / 1000 + self._real_seconds(
                    option.created_ms / 1000, option.expired
                )
                self._settle_later(option, max(0.0, due - now))

    def _restore_option(self, record: Bought) -> None:
        account = self.accounts.get(record.user_id)
        balance_type = None if account is None else account.balance_type_of(record.balance_id)
        if account is None or balance_type is None:
            _log.warning("journal: option %s of an unknown account", record.option_id)
            return
        option = option_of(record, balance_type)
        account.add(option.balance_id, -option.price)
        self._file(option)
        self._next_option_id = max(self._next_option_id, option.option_id + 1)

    # accounts ---------------------------------------------------------------------------

    def _add_account(
        self,
        user_id: int,
        email: str,
        password_hash: str,
        currency: str,
        balance: Decimal,
        two_factor: bool,
    ) -> Account:
        amount = balance.quantize(CENT)
        account = Account(
            user_id=user_id,
            email=email,
            password_hash=password_hash,
            currency=currency,
            practice_balance_id=user_id * 10 + 4,
            real_balance_id=user_id * 10 + 1,
            practice=amount,
            real=amount,
            two_factor=two_factor,
        )
        self.accounts[user_id] = account
        self.by_email[email.lower()] = account
        self._next_user_id = max(self._next_user_id, user_id + 1)
        return account

    def create_account(
        self, currency: str, balance: Decimal, two_factor: bool = False
    ) -> tuple[Account, str]:
        """A new account and its password (given back once, never kept in clear)."""
        user_id = self._next_user_id
        password = secrets.token_urlsafe(12)
        account = self._add_account(
            user_id,
            f"trader{user_id}@sim.iqoption.invalid",
            hash_password(password),
            currency,
            balance,
            two_factor,
        )
        if self.journal is not None:
            self.journal.append(
                Opened(
                    user_id,
                    account.email,
                    account.password_hash,
                    currency,
                    account.practice,
                    account.practice_balance_id,
                    account.real_balance_id,
                    two_factor,
                )
            )
        return account, password

    def change_password(self, user_id: int, password: str) -> bool:
        """Set the password; revokes the user's ssids and closes its sockets."""
        account = self.accounts.get(user_id)
        if account is None:
            return False
        account.password_hash = hash_password(password)
        self._forget_ssids(user_id)
        if self.journal is not None:
            self.journal.append(PasswordChanged(user_id, account.password_hash))
        for conn in list(self._connections_of.get(user_id, ())):
            conn.drop(1000, "password changed")
        return True

    def revoke(self, account_id: str) -> dict[str, Any] | None:
        """Revoke the user's ssids (the shared ``POST /admin/accounts/{id}/revoke``): later
        sockets are refused, open ones stay; the password still logs in."""
        user_id = int(account_id) if account_id.isdigit() else None
        if user_id is None or user_id not in self.accounts:
            return None
        self._forget_ssids(user_id)
        if self.journal is not None:
            self.journal.append(Revoked(user_id))
        return {"user_id": user_id}

    def _forget_ssids(self, user_id: int) -> None:
        for ssid_hash in [h for h, user in self.ssids.items() if user == user_id]:
            del self.ssids[ssid_hash]

    # the HTTP login and the kind's own admin calls (apps.brokers.simulation.OwnRoutes) --

    def own_route(self, request: HttpRequest) -> HttpReply | None:
        method, path = request.method, request.path
        if (method, path) == ("POST", LOGIN_PATH):
            return self._login(request)
        if (method, path) == ("POST", "/admin/accounts"):
            new = msgspec.json.decode(request.body or b"{}", type=NewIQAccounts, strict=False)
            if not 1 <= new.count <= MAX_NEW_ACCOUNTS:
                return bad_request(f"count must be 1..{MAX_NEW_ACCOUNTS}")
            rows = [
                account.created_row(password)
                for account, password in (
                    self.create_account(new.currency, new.balance, new.two_factor)
                    for _ in range(new.count)
                )
            ]
            return HttpReply(status=201, body={"accounts": rows})
        if method == "POST" and path.startswith("/admin/accounts/"):
            return self._account_call(request)
        if (method, path) == ("GET", "/admin/faults"):
            return HttpReply(status=200, body=self.fault_switches())
        if (method, path) == ("PUT", "/admin/faults"):
            changes = msgspec.json.decode(request.body or b"{}")
            if not isinstance(changes, dict):
                return bad_request("the faults must be a JSON object")
            self.set_faults(changes)
            return HttpReply(status=200, body=self.fault_switches())
        return None

    def _account_call(self, request: HttpRequest) -> HttpReply | None:
        parts = request.path.split("/")  # "", "admin", "accounts", id, call
        if len(parts) != 5 or not parts[3].isdigit() or parts[4] != "password":
            return None  # the shared admin API answers the rest (revoke among them)
        user_id = int(parts[3])
        new = msgspec.json.decode(request.body or b"{}", type=NewPassword)
        if not new.password:
            return bad_request("the password must not be empty")
        if not self.change_password(user_id, new.password):
            return HttpReply(status=404, body={"error": f"no account {user_id}"})
        return HttpReply(status=200, body={"user_id": user_id})

    def fault_switches(self) -> dict[str, Any]:
        shared = msgspec.structs.asdict(self.faults)
        if self.switches.force_equal:
            shared["force_outcome"] = "equal"
        return shared | {
            "suspended_actives": self.switches.suspended_actives,
            "login_limit": self.switches.login_limit,
        }

    def set_faults(self, changes: dict[str, Any]) -> None:
        """Apply the switches ``changes`` names (shared and IQ Option's own); the others
        keep their values. Raises msgspec.ValidationError on a bad value."""
        own = {k: v for k, v in changes.items() if k in _SWITCH_NAMES}
        shared = {k: v for k, v in changes.items() if k not in _SWITCH_NAMES}
        force_equal = self.switches.force_equal
        if "force_outcome" in shared:
            force_equal = shared["force_outcome"] == "equal"
            if force_equal:
                shared["force_outcome"] = None
        faults = self.faults.updated(shared)
        switches = msgspec.convert(
            msgspec.structs.asdict(self.switches) | own | {"force_equal": force_equal}, Switches
        )
        self.faults, self.switches = faults, switches

    def _login(self, request: HttpRequest) -> HttpReply:
        if request.content_type.startswith("application/json"):
            form = msgspec.json.decode(request.body or b"{}")
            form = form if isinstance(form, dict) else {}
        else:
            parsed = urllib.parse.parse_qs(request.body.decode("utf-8", "replace"))
            form = {k: v[0] for k, v in parsed.items()}
        identifier, password = form.get("identifier") or form.get("email"), form.get("password")
        if not isinstance(identifier, str) or not isinstance(password, str):
            return bad_request("identifier and password are required")
        ttl = self._login_wait(identifier.lower())
        if ttl is not None:
            return login_limited(ttl)
        account = self.by_email.get(identifier.lower())
        if account is None or not password_matches(password, account.password_hash):
            return invalid_credentials()
        if account.two_factor:
            return verify(secrets.token_hex(16))
        ssid = secrets.token_hex(16)
        ssid_hash = hash_ssid(ssid)
        self.ssids[ssid_hash] = account.user_id
        self.stats["logins"] += 1
        if self.journal is not None:
            self.journal.append(SessionOpened(account.user_id, ssid_hash))
        return logged_in(ssid)

    def _login_wait(self, identifier: str) -> int | None:
        """Seconds until the identifier may log in again under the login limit, or None
        (the attempt is counted) when it may now."""
        limit = self.switches.login_limit
        if limit is None:
            self._logins.pop(identifier, None)
            return None
        window = self.config.login_window_seconds
        now = time.monotonic()
        attempts = self._logins.setdefault(identifier, deque())
        while attempts and attempts[0] <= now - window:
            attempts.popleft()
        if len(attempts) >= limit:
            oldest = attempts[0] if attempts else now  # a limit of 0 refuses every login
            return max(1, math.ceil(oldest + window - now))
        attempts.append(now)
        return None

    def log_in(self, conn: Connection, ssid: str) -> Account | None:
        """Attach the socket to the user whose ssid this is, or None if none is."""
        ssid_hash = hash_ssid(ssid)
        user_id = self.ssids.get(ssid_hash)
        if user_id is None:
            return None
        conn.user_id, conn.ssid_hash = user_id, ssid_hash
        self._connections_of.setdefault(user_id, set()).add(conn)
        return self.accounts[user_id]

    def is_suspended(self, active_id: int) -> bool:
        return active_id in self.switches.suspended_actives

    # the shared admin API (apps.brokers.simulation) -------------------------------------

    @property
    def idle_timeout_seconds(self) -> float:
        return self.config.idle_timeout_seconds

    def new_peer(self, send: Send) -> Connection:
        return Connection(send_event=send)

    def connection_count(self) -> int:
        return len(self.connections)

    def open_account(self, currency: str, balance: Decimal) -> dict[str, Any]:
        account, password = self.create_account(currency, balance)
        return account.created_row(password)

    def open_accounts(self, count: int, currency: str, balance: Decimal) -> list[dict[str, Any]]:
        return [self.open_account(currency, balance) for _ in range(count)]

    def account_rows(self) -> list[dict[str, Any]]:
        return [a.admin_row() for a in self.accounts.values()]

    def ledger_rows(self, since: int) -> tuple[list[dict[str, Any]], int]:
        return [o.ledger_row() for o in self.ledger[since:]], len(self.ledger)

    def set_rate_limits(self, limits: RateLimits) -> RateLimits:
        self.config.rate_limits.update(limits)
        self.limiter = RateLimiter(self.config.rate_limits)
        return self.config.rate_limits

    # connections ------------------------------------------------------------------------

    def connect(self, conn: Connection) -> None:
        self.connections.add(conn)
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick())
        conn.push(message("timeSync", int(time.time() * 1000)))

    def disconnect(self, conn: Connection) -> None:
        conn.closed = True
        self.connections.discard(conn)
        if conn.user_id is not None:
            peers = self._connections_of.get(conn.user_id)
            if peers is not None:
                peers.discard(conn)
                if not peers:
                    del self._connections_of[conn.user_id]

    async def _tick(self) -> None:
        """timeSync and heartbeats to every socket, from this one task."""
        sync_every, beat_every = self.config.time_sync_seconds, self.config.heartbeat_seconds
        loop = asyncio.get_running_loop()
        next_sync, next_beat = loop.time() + sync_every, loop.time() + beat_every
        while True:
            await asyncio.sleep(max(0.0, min(next_sync, next_beat) - loop.time()))
            now, now_ms = loop.time(), int(time.time() * 1000)
            if now >= next_beat:
                next_beat = _next_due(next_beat, beat_every, now)
                self._heartbeat(now_ms)
            if now >= next_sync:
                next_sync = _next_due(next_sync, sync_every, now)
                sync = encode(message("timeSync", now_ms))
                for conn in list(self.connections):
                    conn.push_text(sync)

    def _heartbeat(self, now_ms: int) -> None:
        beat = encode(message("heartbeat", now_ms))
        for conn in list(self.connections):
            if conn.user_id is None:  # a client answers only once logged in
                continue
            if len(conn.unanswered) >= self.config.heartbeat_misses:
                conn.drop(1000, "heartbeats unanswered")
                continue
            conn.unanswered.append(now_ms)
            conn.push_text(beat)

    # dispatch ---------------------------------------------------------------------------

    def receive(self, conn: Connection, text: str) -> None:
        """One incoming message: answered on the spot, or, under the latency fault, in a
        task of its own so a socket's delayed requests still overlap."""
        if self.faults.latency_ms > 0:
            conn.keep(asyncio.create_task(self._delayed(conn, text)))
            return
        self._handle(conn, text)

    async def _delayed(self, conn: Connection, text: str) -> None:
        await asyncio.sleep(self.faults.latency_ms / 1000)
        self._handle(conn, text)

    def _handle(self, conn: Connection, text: str) -> None:
        if conn.closed:  # nothing is done for a socket that is gone
            return
        try:
            request = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return  # IQ Option ignores what it cannot read
        name = request.get("name") if isinstance(request, dict) else None
        if conn.user_id is None and name != "ssid":
            conn.drop(1008, "authenticate first")
            return
        handler = HANDLERS.get(name) if isinstance(name, str) else None
        if handler is None:
            return
        assert isinstance(request, dict)
        try:
            handler(self, conn, request)
        except Exception:  # a bug answers nothing but must not end the connection
            _log.exception("handling a %.50s message failed", name)

    # options ----------------------------------------------------------------------------

    def book(self, account: Account, terms: Terms, request_id: str) -> Option:
        now = time.time()
        created_ms = int(now * 1000)
        balance_type = account.balance_type_of(terms.balance_id)
        assert balance_type is not None, "the purchase checks the balance is the user's"
        account.add(terms.balance_id, -terms.price)
        option = Option(
            option_id=self._next_option_id,
            user_id=account.user_id,
            balance_id=terms.balance_id,
            request_id=request_id,
            active_id=terms.active_id,
            option_type_id=terms.option_type_id,
            direction=terms.direction,
            expired=terms.expired,
            price=terms.price,
            profit_income=100 + self.config.actives[terms.active_id].payout_percent,
            created_ms=created_ms,
            value=self.feed.spot(terms.active_id),
            balance_type=balance_type,
        )
        self._next_option_id += 1
        self._file(option)
        self.stats["buys"] += 1
        if self.journal is not None:
            self.journal.append(bought_record(option))
        self._settle_later(option, self._real_seconds(now, option.expired))
        return option

    def _real_seconds(self, created: float, expired: int) -> float:
        """How long an option runs: its nominal length at this run's time scale."""
        return max(0.0, expired - created) / self.config.time_scale

    def _file(self, option: Option) -> None:
        self.ledger.append(option)
        self.options[option.option_id] = option
        self.options_of.setdefault(option.balance_id, []).append(option)

    def _settle_later(self, option: Option, seconds: float) -> None:
        """Schedule the option into the first slot at or after ``seconds`` from now."""
        loop = asyncio.get_running_loop()
        slot = math.ceil((loop.time() + seconds) / self._slot_seconds)
        due = self._due.get(slot)
        if due is None:
            due = self._due[slot] = []
            self._timers[slot] = loop.call_at(slot * self._slot_seconds, self._settle_slot, slot)
        due.append(option)

    def _settle_slot(self, slot: int) -> None:
        del self._timers[slot]
        for option in self._due.pop(slot):
            try:
                self._settle(option)
            except Exception:  # one broken option must not keep the others open
                _log.exception("settling option %s failed", option.option_id)

    def _settle(self, option: Option) -> None:
        exit_value = self.feed.spot(option.active_id)
        forced = self._forced_outcome()
        if forced is not None:
            pip = self.feed.pip(option.active_id)
            up = {"won": 1, "lost": -1, "equal": 0}[forced] * (
                1 if option.direction == "call" else -1
            )
            exit_value = round(option.value + up * pip, 10)
        if exit_value == option.value:
            win, amount = "equal", option.price
        elif (exit_value > option.value) == (option.direction == "call"):
            win, amount = "win", option.payout()
        else:
            win, amount = "loose", ZERO
        option.win, option.win_amount = win, amount
        option.exp_value = exit_value
        option.closed = int(time.time())
        self.accounts[option.user_id].add(option.balance_id, amount)
        if self.journal is not None:
            self.journal.append(closed_record(option))
        self._push_closed(option)

    def _forced_outcome(self) -> Literal["won", "lost", "equal"] | None:
        return "equal" if self.switches.force_equal else self.faults.force_outcome

    def _push_closed(self, option: Option) -> None:
        """To every socket of the user that follows such options: O(its sockets)."""
        frames: tuple[str, str] | None = None
        for conn in self._connections_of.get(option.user_id, ()):
            if not conn.follows(option.instrument_type, option.balance_id):
                continue
            if frames is None:  # encoded once, only if someone listens
                frames = (
                    encode(message("socket-option-closed", option.socket_closed())),
                    encode(message("option-closed", option.closed_body())),
                )
            for frame in frames:
                conn.push_text(frame)

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._due.clear()
        if self.journal is not None:
            await self.journal.close()


def _next_due(due: float, every: float, now: float) -> float:
    """The next due time on the grid, or a fresh start when the loop fell behind it."""
    due += every
    return due if due > now else now + every
