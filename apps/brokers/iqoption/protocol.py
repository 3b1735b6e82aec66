"""IQ Option's WebSocket calls as data and pure functions: the messages the adapter sends,
and their replies read into frozen values.

Sources: ../shared/brokers/iqoption.md (the reverse-engineered clients) and contract-26's
wire section, which the simulator serves too. What the API and the router share with the
worker (login, profile, asset ids, legal expiries) is :mod:`apps.core.brokers.iqoption`.
Nothing here does I/O, so it is unit-tested directly.

Money never passes through a float: the session decodes JSON numbers as ``Decimal``
(:mod:`apps.brokers.iqoption.session`), and every reader converts through ``str``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import msgspec

from apps.brokers.base import Placed, Settlement
from apps.core.brokers.iqoption import (
    BINARY,
    STATUS_BAD_BALANCE,
    STATUS_BAD_EXPIRY,
    STATUS_BAD_STAKE,
    STATUS_MARKET_CLOSED,
    STATUS_NO_FUNDS,
    STATUS_OK,
    STATUS_SUSPENDED,
    STATUS_TIME_OVER,
    TURBO,
    legal_expiries,
)

# How many options one ``get-options`` lists (the broker's cap).
GET_OPTIONS_LIMIT = 1000
# ``portfolio.position-changed`` is filtered per instrument type; the copier buys both.
POSITION_INSTRUMENTS = ("turbo-option", "binary-option")

# Rejection codes the runner reports for each failure status of ``open-option``: every
# one is permanent (the same buy fails again within a signal's few seconds).
REJECTION_CODES: dict[int, str] = {
    STATUS_SUSPENDED: "ActiveSuspended",
    STATUS_NO_FUNDS: "InsufficientBalance",
    STATUS_BAD_BALANCE: "InvalidBalance",
    STATUS_BAD_EXPIRY: "InvalidExpiry",
    STATUS_TIME_OVER: "PurchaseTimeOver",
    STATUS_BAD_STAKE: "InvalidStake",
    STATUS_MARKET_CLOSED: "MarketIsClosed",
}
# A failure status not in the table: still a refusal with nothing bought.
UNKNOWN_REJECTION = "OpenOptionFailed"
# A call refused for the account's request rate (``result`` ``success: false``, "Too many
# requests"): nothing was done, and the same call may pass after a pause.
RATE_LIMITED = "RateLimit"

# The codes of Rejected.account_refused rejections (contract-26).
CREDENTIALS_REFUSED = "credentials_refused"
TWO_FACTOR_REQUIRED = "two_factor_required"


# --- messages out -----------------------------------------------------------------------


def option_type_for(expiry_at: int, now: float) -> int:
    """The ``option_type_id`` of an option ending at ``expiry_at`` bought at ``now``:
    TURBO when it is one of the turbo boundaries then, else BINARY (the broker refuses an
    expiry on neither grid with status 4103)."""
    turbo = any(e.at == expiry_at and e.option_type_id == TURBO for e in legal_expiries(now))
    return TURBO if turbo else BINARY


def open_option(
    request_id: str,
    *,
    balance_id: int,
    active_id: int,
    option_type_id: int,
    direction: Literal["CALL", "PUT"],
    expired: int,
    price: Decimal,
) -> dict[str, Any]:
    """A buy. ``request_id`` is the copier's order id, so the broker's records (and the
    simulator's ledger) trace each option to its order."""
    return {
        "name": "sendMessage",
        "request_id": request_id,
        "msg": {
            "name": "binary-options.open-option",
            "version": "1.0",
            "body": {
                "user_balance_id": balance_id,
                "active_id": active_id,
                "option_type_id": option_type_id,
                "direction": direction.lower(),
                "expired": expired,
                "price": price,
            },
        },
    }


def get_options(request_id: str, balance_id: int, limit: int = GET_OPTIONS_LIMIT) -> dict[str, Any]:
    """The balance's latest options, newest first (reconciliation)."""
    return {
        "name": "sendMessage",
        "request_id": request_id,
        "msg": {
            "name": "get-options",
            "version": "1.0",
            "body": {
                "limit": min(limit, GET_OPTIONS_LIMIT),
                "instrument_type": "binary,turbo",
                "user_balance_id": balance_id,
            },
        },
    }


def subscribe_positions(request_id: str, balance_id: int, instrument: str) -> dict[str, Any]:
    """Asks for ``socket-option-closed`` pushes of the balance's options of one type."""
    return {
        "name": "subscribeMessage",
        "request_id": request_id,
        "msg": {
            "name": "portfolio.position-changed",
            "version": "2.0",
            "params": {
                "routingFilters": {"instrument_type": instrument, "user_balance_id": balance_id}
            },
        },
    }


def betinfo(request_id: str, option_id: int, currency: str) -> dict[str, Any]:
    """One option's state (settlement polling)."""
    return {
        "name": "api_game_betinfo",
        "request_id": request_id,
        "msg": {"currency": currency, "id[0]": option_id},
    }


def heartbeat_answer(request_id: str, server_ms: Any, client_ms: int) -> dict[str, Any]:
    """The answer to the server's ``heartbeat`` (the broker closes sockets that stop)."""
    return {
        "name": "heartbeat",
        "request_id": request_id,
        "msg": {"heartbeatTime": server_ms, "userTime": client_ms},
    }


# --- replies ----------------------------------------------------------------------------


class OptionOpened(msgspec.Struct, frozen=True, kw_only=True):
    """The ``option`` reply of a successful buy."""

    option_id: int
    price: Decimal
    profit_income: Decimal  # 100 + payout percent
    created: int
    expired: int
    value: Decimal | None = None  # the open value: the spot the option starts from

    def placed(self, order_id: str, *, reconciled: bool = False) -> Placed:
        return Placed(
            order_id=order_id,
            contract_id=str(self.option_id),
            buy_price=self.price,
            payout=payout_of(self.price, self.profit_income),
            purchase_time=self.created,
            broker_ref=str(self.option_id),  # IQ Option has no separate transaction id
            reconciled=reconciled,
            entry_spot=self.value,
            expiry_at=self.expired or None,
        )


class OptionRefused(msgspec.Struct, frozen=True, kw_only=True):
    """The broker refused the buy: nothing was bought."""

    code: str
    message: str


class ReplyUnreadable(msgspec.Struct, frozen=True, kw_only=True):
    reason: str


OpenAnswer = OptionOpened | OptionRefused | ReplyUnreadable


def payout_of(price: Decimal, profit_income: Decimal) -> Decimal:
    """What a won option pays: the stake times ``profit_income`` percent."""
    return (price * profit_income / 100).quantize(Decimal("0.01"))


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError("not a number")
    number = Decimal(str(value))
    if not number.is_finite():
        raise ValueError("not finite")
    return number


def _spot(value: Any) -> Decimal | None:
    """A quote the broker gave, or ``None`` when it gave none (absent, zero, unreadable):
    a spot is never made up."""
    try:
        number = _decimal(value)
    except (ValueError, TypeError, InvalidOperation):
        return None
    return number if number > 0 else None


def read_refusal(message: Mapping[str, Any]) -> OptionRefused | None:
    """A ``result`` with ``success: false``: the call was refused and nothing was done
    (code RATE_LIMITED when it was the account's request rate)."""
    msg = message.get("msg")
    if message.get("name") != "result" or not isinstance(msg, Mapping):
        return None
    if msg.get("success") is not False:
        return None
    text = str(msg.get("message") or "the broker refused the call")
    code = RATE_LIMITED if "too many" in text.lower() else UNKNOWN_REJECTION
    return OptionRefused(code=code, message=text)


def read_open_option(message: Mapping[str, Any]) -> OpenAnswer:
    """The answer to ``open-option``: the final ``option`` message, or a ``result`` that
    says the call itself failed."""
    msg = message.get("msg")
    if message.get("name") == "result":
        refused = read_refusal(message)
        if refused is not None:
            return refused
        return ReplyUnreadable(reason="the broker acknowledged the buy without its option")
    if message.get("name") != "option" or not isinstance(msg, Mapping):
        return ReplyUnreadable(reason=f"unexpected reply {message.get('name')!r} to a buy")
    status = message.get("status", STATUS_OK)
    if status != STATUS_OK:
        text = msg.get("message") or f"the broker refused the buy (status {status})"
        code = REJECTION_CODES.get(status, UNKNOWN_REJECTION) if isinstance(status, int) else ""
        return OptionRefused(code=code or UNKNOWN_REJECTION, message=str(text))
    try:
        return OptionOpened(
            option_id=int(msg["id"]),
            price=_decimal(msg["price"]),
            profit_income=_decimal(msg.get("profit_income", 0)),
            created=int(msg.get("created") or 0),
            expired=int(msg.get("exp") or msg.get("expired") or 0),
            value=_spot(msg.get("value")),
        )
    except (KeyError, TypeError, ValueError, InvalidOperation):
        return ReplyUnreadable(reason="the broker's option reply is unreadable")


class ListedOption(msgspec.Struct, frozen=True, kw_only=True):
    """An option as ``get-options`` lists it: what reconciliation matches on."""

    option_id: int
    active_id: int
    direction: str  # "call" | "put"
    expired: int
    price: Decimal
    created: int
    profit_income: Decimal
    value: Decimal | None = None  # the open value

    def opened(self) -> OptionOpened:
        return OptionOpened(
            option_id=self.option_id,
            price=self.price,
            profit_income=self.profit_income,
            created=self.created,
            expired=self.expired,
            value=self.value,
        )


def read_options(message: Mapping[str, Any]) -> list[ListedOption] | ReplyUnreadable:
    msg = message.get("msg")
    rows = msg.get("options") if isinstance(msg, Mapping) else None
    if message.get("name") != "options" or not isinstance(rows, list):
        return ReplyUnreadable(reason="the broker's list of options is unreadable")
    listed = []
    for row in rows:
        try:
            listed.append(
                ListedOption(
                    option_id=int(row["id"]),
                    active_id=int(row["active_id"]),
                    direction=str(row["direction"]).lower(),
                    expired=int(row["expired"]),
                    price=_decimal(row["price"]),
                    created=int(row.get("created") or 0),
                    profit_income=_decimal(row.get("profit_income", 0)),
                    value=_spot(row.get("value")),
                )
            )
        except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError):
            return ReplyUnreadable(reason="the broker listed an unreadable option")
    return listed


def same_terms(
    option: ListedOption,
    *,
    active_id: int,
    direction: Literal["CALL", "PUT"],
    expired: int,
    price: Decimal,
    since: float,
) -> bool:
    """Whether a listed option could be the buy of an order with these terms, sent no
    earlier than ``since``."""
    return (
        option.active_id == active_id
        and option.direction == direction.lower()
        and option.expired == expired
        and option.price == price
        and option.created >= since
    )


# --- settlement -------------------------------------------------------------------------


class OptionClosed(msgspec.Struct, frozen=True, kw_only=True):
    """An option's end: ``win`` is "win", "loose" (the broker's spelling) or "equal"."""

    option_id: int
    win: str
    sum: Decimal  # the stake
    win_amount: Decimal  # what the balance got back: payout, 0, or the stake
    closed_at: int
    open_value: Decimal | None = None  # the entry spot, when the message gives it
    close_value: Decimal | None = None  # the exit spot, when the message gives it

    def settlement(self) -> Settlement:
        """The copier's settlement. Profit: win → win_amount - stake; loose → -stake;
        equal → 0. An "equal" (the stake refunded) is outcome "lost" with profit 0 and
        sell_price = stake: the copier's outcomes are only "won" and "lost"."""
        match self.win:
            case "win":
                sell_price = self.win_amount
            case "equal":
                sell_price = self.sum
            case _:
                sell_price = Decimal(0)
        profit = sell_price - self.sum
        return Settlement(
            contract_id=str(self.option_id),
            outcome="won" if profit > 0 else "lost",
            buy_price=self.sum,
            sell_price=sell_price,
            profit=profit,
            sell_time=self.closed_at,
            entry_spot=self.open_value,
            exit_spot=self.close_value,
            expiry_at=self.closed_at or None,
        )


class StillOpen(msgspec.Struct, frozen=True, kw_only=True):
    option_id: int


class UnknownOption(msgspec.Struct, frozen=True, kw_only=True):
    """The broker does not know the option (never bought on this account)."""

    option_id: int
    message: str


BetInfo = OptionClosed | StillOpen | UnknownOption | ReplyUnreadable

_CLOSED = frozenset({"win", "loose", "equal"})


def _closed(option_id: int, state: Mapping[str, Any]) -> OptionClosed | StillOpen:
    win = str(state.get("win") or "")
    if win not in _CLOSED:
        return StillOpen(option_id=option_id)
    return OptionClosed(
        option_id=option_id,
        win=win,
        sum=_decimal(state["sum"]),
        win_amount=_decimal(state.get("win_amount") or 0),
        closed_at=int(state.get("exp") or 0),
        # "value" is the open value and "exp_value" the close value, as in the option
        # reply; a message without them leaves the spots unknown.
        open_value=_spot(state.get("value")),
        close_value=_spot(state.get("exp_value")),
    )


def read_option_closed(msg: Any) -> OptionClosed | ReplyUnreadable:
    """The ``msg`` of a ``socket-option-closed`` push."""
    if not isinstance(msg, Mapping):
        return ReplyUnreadable(reason="unreadable socket-option-closed")
    try:
        closed = _closed(int(msg["id"]), msg)
    except (KeyError, TypeError, ValueError, InvalidOperation):
        return ReplyUnreadable(reason="unreadable socket-option-closed")
    if isinstance(closed, StillOpen):
        return ReplyUnreadable(reason="socket-option-closed without a result")
    return closed


def read_betinfo(message: Mapping[str, Any], option_id: int) -> BetInfo:
    """The answer to ``api_game_betinfo`` about ``option_id``."""
    msg = message.get("msg")
    if message.get("name") != "api_game_betinfo_result" or not isinstance(msg, Mapping):
        return ReplyUnreadable(reason="unexpected answer to api_game_betinfo")
    if msg.get("isSuccessful") is not True:
        return UnknownOption(option_id=option_id, message=f"IQ Option knows no option {option_id}")
    result = msg.get("result")
    data = result.get("data") if isinstance(result, Mapping) else None
    state = data.get(str(option_id)) if isinstance(data, Mapping) else None
    if not isinstance(state, Mapping):
        return UnknownOption(option_id=option_id, message=f"IQ Option knows no option {option_id}")
    try:
        return _closed(option_id, state)
    except (KeyError, TypeError, ValueError, InvalidOperation):
        return ReplyUnreadable(reason="unreadable api_game_betinfo answer")
