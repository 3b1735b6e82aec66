"""Deriv's ``authorize`` call (API v3): the request, and its answer read as a value.

Both the API (verifying a token when an account is linked) and the Deriv worker (logging
in each session) send :func:`authorize_request` and read the reply with
:func:`read_authorize`; each sends it over its own socket. Pure: no I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

import msgspec

# Codes that mean the token itself is refused: no retry can make it work.
REFUSED_TOKEN_CODES = frozenset({"InvalidToken", "InputValidationFailed"})


class Authorized(msgspec.Struct, frozen=True, kw_only=True):
    """The account the token opens."""

    loginid: str
    currency: str
    balance: Decimal


class AuthorizeRefused(msgspec.Struct, frozen=True, kw_only=True):
    """Deriv answered with an error (``code`` is "" if it named none)."""

    code: str
    message: str

    @property
    def token_refused(self) -> bool:
        """The token is refused for good (as opposed to a rate limit or an outage)."""
        return self.code in REFUSED_TOKEN_CODES


class AuthorizeUnreadable(msgspec.Struct, frozen=True, kw_only=True):
    """The answer is neither an account nor an error: Deriv sent something unexpected."""

    reason: str


AuthorizeAnswer = Authorized | AuthorizeRefused | AuthorizeUnreadable


def endpoint_url(url: str, app_id: int) -> str:
    """The WebSocket URL a connection opens: Deriv identifies the application by the
    ``app_id`` query parameter on every connection, the API's verification included."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({'app_id': app_id, 'l': 'EN'})}"


def authorize_request(token: str) -> dict[str, Any]:
    """The call's payload; the sender adds its ``req_id``."""
    return {"authorize": token}


def read_authorize(reply: Mapping[str, Any]) -> AuthorizeAnswer:
    """The reply to ``authorize`` as the account, the refusal, or why it is unreadable.

    The balance is read from its text whether it came as a number (v3) or a string (the
    newer API), so it never passes through a float.
    """
    error = reply.get("error")
    if error:
        if not isinstance(error, Mapping):
            return AuthorizeUnreadable(reason="the broker sent an unexpected error")
        return AuthorizeRefused(
            code=str(error.get("code") or ""), message=str(error.get("message") or "")
        )
    account = reply.get("authorize")
    if not isinstance(account, Mapping):
        return AuthorizeUnreadable(reason="the broker sent an unexpected answer")
    raw_balance = account.get("balance", "0")
    try:
        balance = Decimal(str(raw_balance))
    except InvalidOperation:
        return AuthorizeUnreadable(reason=f"the broker sent an unreadable balance {raw_balance!r}")
    if not balance.is_finite():
        return AuthorizeUnreadable(reason="the broker sent a non-finite balance")
    return Authorized(
        loginid=str(account.get("loginid") or ""),
        currency=str(account.get("currency") or ""),
        balance=balance,
    )
