"""The IQ Option WebSocket calls the simulator answers, one function each (:data:`HANDLERS`).

A handler validates the request as IQ Option does, acts on the simulator's state and
writes its replies (a purchase answers twice: ``result``, then ``option``). Every call is
synchronous; the simulator checks the login and dispatches to them. A purchase consults
the fault switches here: an injected refusal before anything is booked, a reply lost
after the booking.

The purchase checks, in order: the balance id is one of the user's (4102), the market is
open (4106), the active is offered and not suspended (4100), the expiry can still be
bought (4104: 30 s or less left), it is a legal expiry of its option type (4103), the
price is 1..20000 with at most two decimals (4105), the balance covers it (4101).

The calls see the simulator through :class:`Simulator`, exactly what they use of it, so
this module does not import the broker that imports it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from apps.brokers.iqoption.simulator.config import SimConfig
from apps.brokers.iqoption.simulator.connection import Connection
from apps.brokers.iqoption.simulator.options import CENT, Account, Option
from apps.brokers.iqoption.simulator.wire import (
    STATUS_INVALID,
    PurchaseFailure,
    as_int,
    as_price,
    message,
    option_failure,
)
from apps.brokers.simulation import Faults, RateLimiter
from apps.core.brokers.iqoption import (
    ASSET_OF_ACTIVE,
    INSTRUMENT_TYPES,
    MAX_STAKE,
    MIN_STAKE,
    STATUS_BAD_BALANCE,
    STATUS_BAD_EXPIRY,
    STATUS_BAD_STAKE,
    STATUS_MARKET_CLOSED,
    STATUS_NO_FUNDS,
    STATUS_OK,
    STATUS_SUSPENDED,
    STATUS_TIME_OVER,
    legal_expiries,
    purchasable,
)

OPEN_OPTION = "binary-options.open-option"
GET_OPTIONS = "get-options"
POSITION_CHANGED = "portfolio.position-changed"
REQUEST_ID_MAX = 128
GET_OPTIONS_MAX = 1000

_log = logging.getLogger(__name__)


class Simulator(Protocol):
    """What the calls read and change of the simulator's state, and what they ask of it."""

    config: SimConfig
    faults: Faults
    rng: random.Random
    stats: dict[str, int]
    limiter: RateLimiter
    accounts: dict[int, Account]
    options: dict[int, Option]
    options_of: dict[int, list[Option]]  # by balance id, in booking order

    def log_in(self, conn: Connection, ssid: str) -> Account | None: ...

    def is_suspended(self, active_id: int) -> bool: ...

    def book(self, account: Account, terms: Terms, request_id: str) -> Option: ...


@dataclass(frozen=True, slots=True)
class Terms:
    """A validated purchase: what :meth:`Simulator.book` books."""

    balance_id: int
    active_id: int
    option_type_id: int
    direction: str
    expired: int
    price: Decimal


def _request_id(request: dict[str, Any]) -> str:
    raw = request.get("request_id")
    return raw if isinstance(raw, str) else "" if raw is None else str(raw)


def _ssid(sim: Simulator, conn: Connection, request: dict[str, Any]) -> None:
    ssid = request.get("msg")
    account = sim.log_in(conn, ssid) if isinstance(ssid, str) else None
    if account is None:
        conn.push(message("profile", False))
        conn.drop(1000, "invalid ssid")
        return
    conn.push(message("profile", account.profile()))


def _heartbeat(sim: Simulator, conn: Connection, request: dict[str, Any]) -> None:
    msg = request.get("msg")
    sent = msg.get("heartbeatTime") if isinstance(msg, dict) else None
    if isinstance(sent, int) and sent in conn.unanswered:
        conn.unanswered.clear()


def _send_message(sim: Simulator, conn: Connection, request: dict[str, Any]) -> None:
    request_id = _request_id(request)
    msg = request.get("msg")
    name = msg.get("name") if isinstance(msg, dict) else None
    body = msg.get("body") if isinstance(msg, dict) else None
    if name not in (OPEN_OPTION, GET_OPTIONS) or not isinstance(body, dict):
        conn.push(message("result", {"success": False, "message": "unknown message"}, request_id))
        return
    assert conn.user_id is not None, "the simulator dispatches only logged-in sockets"
    if not sim.limiter.allow(str(conn.user_id), "sendMessage"):
        sim.stats["rate_limited"] += 1
        conn.push(message("result", {"success": False, "message": "Too many requests"}, request_id))
        return
    account = sim.accounts[conn.user_id]
    if name == OPEN_OPTION:
        _open_option(sim, conn, account, request_id, body)
    else:
        _get_options(sim, conn, account, request_id, body)


def _open_option(
    sim: Simulator, conn: Connection, account: Account, request_id: str, body: dict[str, Any]
) -> None:
    try:
        if len(request_id) > REQUEST_ID_MAX:
            raise PurchaseFailure(STATUS_INVALID, "Invalid request: request_id is too long")
        _injected_failure(sim)
        terms = purchase_terms(sim, account, body, time.time())
    except PurchaseFailure as failure:
        conn.push(option_failure(request_id, failure))
        return
    option = sim.book(account, terms, request_id)
    if sim.faults.take_drop_mid_buy():
        # The option is booked; the replies are lost with the connection (fault switch).
        sim.stats["drops"] += 1
        conn.drop(1011, "dropped mid-buy")
        return
    conn.push(message("result", {"success": True}, request_id))
    conn.push(
        {
            "name": "option",
            "request_id": request_id,
            "status": STATUS_OK,
            "msg": option.opened_body(),
        }
    )


def _injected_failure(sim: Simulator) -> None:
    """The refusal the error switches inject: ``error_code`` is a status ("4101"), any
    other code is refused as a suspended active with that code as its message."""
    code = sim.faults.take_error(sim.rng, str(STATUS_SUSPENDED))
    if code is None:
        return
    if code.isdigit():
        raise PurchaseFailure(int(code))
    raise PurchaseFailure(STATUS_SUSPENDED, code)


def purchase_terms(sim: Simulator, account: Account, body: dict[str, Any], now: float) -> Terms:
    """The purchase's terms, or the :class:`PurchaseFailure` IQ Option answers it with."""
    balance_id = as_int(body.get("user_balance_id"))
    if balance_id is None or account.balance_type_of(balance_id) is None:
        raise PurchaseFailure(STATUS_BAD_BALANCE)
    if sim.faults.market_closed:
        raise PurchaseFailure(STATUS_MARKET_CLOSED)
    active_id = as_int(body.get("active_id"))
    if active_id is None or active_id not in ASSET_OF_ACTIVE or active_id not in sim.config.actives:
        raise PurchaseFailure(STATUS_SUSPENDED, "Cannot purchase an option (active is not offered)")
    if sim.is_suspended(active_id):
        raise PurchaseFailure(STATUS_SUSPENDED)
    direction = body.get("direction")
    if direction not in ("call", "put"):
        raise PurchaseFailure(STATUS_INVALID, "Invalid request: direction must be call or put")
    expired = as_int(body.get("expired"))
    option_type_id = as_int(body.get("option_type_id"))
    if expired is None or option_type_id not in INSTRUMENT_TYPES:
        raise PurchaseFailure(STATUS_BAD_EXPIRY)
    if expired % 60 == 0 and not purchasable(expired, now):
        raise PurchaseFailure(STATUS_TIME_OVER)
    legal = {(e.at, e.option_type_id) for e in legal_expiries(now)}
    if (expired, option_type_id) not in legal:
        raise PurchaseFailure(STATUS_BAD_EXPIRY)
    price = as_price(body.get("price"))
    if price is None or not MIN_STAKE <= price <= MAX_STAKE or price != price.quantize(CENT):
        raise PurchaseFailure(STATUS_BAD_STAKE)
    if account.amount(balance_id) < price:
        raise PurchaseFailure(STATUS_NO_FUNDS)
    return Terms(
        balance_id=balance_id,
        active_id=active_id,
        option_type_id=option_type_id,
        direction=direction,
        expired=expired,
        price=price.quantize(CENT),
    )


def _get_options(
    sim: Simulator, conn: Connection, account: Account, request_id: str, body: dict[str, Any]
) -> None:
    """The balance's options, newest first, at most ``limit`` (1..1000)."""
    balance_id = as_int(body.get("user_balance_id"))
    limit = as_int(body.get("limit"))
    limit = GET_OPTIONS_MAX if limit is None else max(0, min(limit, GET_OPTIONS_MAX))
    kinds = body.get("instrument_type", "binary,turbo")
    wanted = set(str(kinds).split(",")) if kinds else set(INSTRUMENT_TYPES.values())
    rows: list[dict[str, Any]] = []
    if balance_id is not None and account.balance_type_of(balance_id) is not None:
        for option in reversed(sim.options_of.get(balance_id, [])):
            if len(rows) >= limit:
                break
            if option.instrument_type in wanted:
                rows.append(option.listed())
    conn.push(message("options", {"options": rows}, request_id))


def _subscribe(sim: Simulator, conn: Connection, request: dict[str, Any]) -> None:
    for kind_and_balance in _position_filters(request):
        conn.position_filters.add(kind_and_balance)


def _unsubscribe(sim: Simulator, conn: Connection, request: dict[str, Any]) -> None:
    for kind_and_balance in _position_filters(request):
        conn.position_filters.discard(kind_and_balance)


def _position_filters(request: dict[str, Any]) -> list[tuple[str, int | None]]:
    msg = request.get("msg")
    if not isinstance(msg, dict) or msg.get("name") != POSITION_CHANGED:
        return []
    params = msg.get("params")
    filters = params.get("routingFilters") if isinstance(params, dict) else None
    if not isinstance(filters, dict):
        return []
    kind = filters.get("instrument_type")
    if kind not in ("turbo-option", "binary-option"):
        return []
    return [(kind, as_int(filters.get("user_balance_id")))]


def _bet_info(sim: Simulator, conn: Connection, request: dict[str, Any]) -> None:
    """The options named ``id[0]``, ``id[1]``...; unsuccessful if one is not the user's."""
    request_id = _request_id(request)
    msg = request.get("msg")
    ids = [v for k, v in msg.items() if k.startswith("id[")] if isinstance(msg, dict) else []
    data: dict[str, Any] = {}
    for raw in ids:
        option_id = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
        if option_id is None and isinstance(raw, str) and raw.isdigit():
            option_id = int(raw)
        option = sim.options.get(option_id) if option_id is not None else None
        if option is None or option.user_id != conn.user_id:
            conn.push(
                message(
                    "api_game_betinfo_result",
                    {"isSuccessful": False, "message": "not found"},
                    request_id,
                )
            )
            return
        data[str(option.option_id)] = option.bet_info()
    conn.push(
        message(
            "api_game_betinfo_result",
            {"isSuccessful": bool(data), "result": {"data": data}},
            request_id,
        )
    )


HANDLERS: dict[str, Callable[[Simulator, Connection, dict[str, Any]], None]] = {
    "ssid": _ssid,
    "heartbeat": _heartbeat,
    "sendMessage": _send_message,
    "subscribeMessage": _subscribe,
    "unsubscribeMessage": _unsubscribe,
    "api_game_betinfo": _bet_info,
}
