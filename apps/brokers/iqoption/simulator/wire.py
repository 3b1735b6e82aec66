"""IQ Option's message shapes as the simulator writes them, and the login's HTTP answers.

Every WebSocket message is ``{"name", "msg"}``, with the ``request_id`` of the request it
answers (a push has none); a failed purchase is one ``option`` message with a 4xxx
``status``. Nothing here knows the simulator's state, so every other module of it may
import this one.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from apps.brokers.simulation import HttpReply
from apps.core.brokers.iqoption import (
    STATUS_BAD_BALANCE,
    STATUS_BAD_EXPIRY,
    STATUS_BAD_STAKE,
    STATUS_MARKET_CLOSED,
    STATUS_NO_FUNDS,
    STATUS_SUSPENDED,
    STATUS_TIME_OVER,
)

# A request the broker cannot read (a field missing or of the wrong type).
STATUS_INVALID = 4000

FAILURE_MESSAGES: dict[int, str] = {
    STATUS_INVALID: "Invalid request",
    STATUS_SUSPENDED: "Cannot purchase an option (active is suspended)",
    STATUS_NO_FUNDS: "Insufficient funds on the balance",
    STATUS_BAD_BALANCE: "Balance not found",
    STATUS_BAD_EXPIRY: "Invalid expiration time",
    STATUS_TIME_OVER: "Time for purchasing options is over, please try again later.",
    STATUS_BAD_STAKE: "Invalid amount: the price must be between 1 and 20000",
    STATUS_MARKET_CLOSED: "Cannot purchase an option (the market is closed)",
}

SSID_COOKIE_MAX_AGE = 2_592_000


class PurchaseFailure(Exception):
    """A purchase refused with an IQ Option status (see :data:`FAILURE_MESSAGES`)."""

    def __init__(self, status: int, message: str | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.message = message or FAILURE_MESSAGES.get(status, "Cannot purchase an option")


def message(name: str, msg: Any, request_id: str | None = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"name": name, "msg": msg}
    if request_id is not None:
        reply["request_id"] = request_id
    return reply


def option_failure(request_id: str, failure: PurchaseFailure) -> dict[str, Any]:
    return {
        "name": "option",
        "request_id": request_id,
        "status": failure.status,
        "msg": {"message": failure.message, "result": {"request_id": None}},
    }


def as_price(value: Any) -> Decimal | None:
    """A JSON number as a Decimal, or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        return None
    return price if price.is_finite() else None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


# --- the HTTP login -------------------------------------------------------------------


def logged_in(ssid: str) -> HttpReply:
    return HttpReply(
        status=200,
        body={"code": "success", "data": {"ssid": ssid}},
        headers=(("set-cookie", f"ssid={ssid}; Max-Age={SSID_COOKIE_MAX_AGE}; Path=/"),),
    )


def invalid_credentials() -> HttpReply:
    return HttpReply(
        status=403,
        body={
            "code": "invalid_credentials",
            "errors": [{"code": 202, "title": "Invalid credentials"}],
        },
    )


def login_limited(ttl: int) -> HttpReply:
    return HttpReply(
        status=429,
        body={"data": {"ttl": ttl}, "errors": [{"code": 301, "title": "Login limit exceeded"}]},
    )


def verify(token: str) -> HttpReply:
    return HttpReply(status=200, body={"code": "verify", "method": "push", "token": token})


def bad_request(error: str) -> HttpReply:
    return HttpReply(status=400, body={"error": error})
