"""Deriv's ``authorize`` call (API v3), its asset and expiry mapping, its stake limits.

What more than one service needs of Deriv: the API (verifying a token when an account is
linked) and the Deriv worker (logging in each session) send :func:`authorize_request` and
read the reply with :func:`read_authorize`, each over its own socket; the router, the
Deriv adapter and the Deriv simulator map a canonical asset and expiry with
:func:`deriv_symbol` and :func:`deriv_duration` and check stakes against
:data:`MIN_STAKE`/:data:`MAX_STAKE`, so a signal the router lets through is one the
adapter can express. Pure: no I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import urlencode

import msgspec

from apps.core.assets import CANONICAL_ASSETS, AssetClass, Expiry

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


# --- asset and expiry mapping, stake limits -------------------------------------------


class MappingError(msgspec.Struct, frozen=True, kw_only=True):
    """Why Deriv cannot take an asset or an expiry; ``message`` is plain words."""

    code: Literal["UnsupportedAsset", "UnsupportedExpiry"]
    message: str


# Legal Rise/Fall durations per asset class (Deriv contracts_for), one definition read by
# the router's rules, the adapter and the simulator's defaults so they cannot drift apart.
# Forex has no tick contracts and nothing shorter than a minute on Rise/Fall.
TICK_RANGE: dict[AssetClass, tuple[int, int] | None] = {
    AssetClass.SYNTHETIC: (1, 10),
    AssetClass.FOREX: None,
    AssetClass.COMMODITY: None,
}
SECONDS_RANGE: dict[AssetClass, tuple[int, int]] = {
    AssetClass.SYNTHETIC: (15, 86_400),
    AssetClass.FOREX: (60, 86_400),
    AssetClass.COMMODITY: (60, 86_400),
}


def deriv_symbol(asset: str) -> str | MappingError:
    """Canonical asset → Deriv symbol (``EURUSD`` → ``frxEURUSD``, ``R_100`` unchanged)."""
    asset_class = CANONICAL_ASSETS.get(asset)
    if asset_class is None:
        return MappingError(code="UnsupportedAsset", message=f"no Deriv symbol for {asset!r}")
    if asset_class in (AssetClass.FOREX, AssetClass.COMMODITY):
        return f"frx{asset}"
    return asset


def deriv_duration(asset: str, expiry: Expiry) -> tuple[int, Literal["t", "s"]] | MappingError:
    """The copier's expiry → Deriv ``duration``/``duration_unit``, or why it has none.

    Seconds map exactly to ``s`` (Deriv accepts any whole number of seconds in range), so
    no rounding ever changes a provider's expiry; out-of-range expiries are rejected.
    """
    asset_class = CANONICAL_ASSETS.get(asset)
    if asset_class is None:
        return MappingError(code="UnsupportedAsset", message=f"no Deriv symbol for {asset!r}")
    if expiry.unit == "ticks":
        ticks = TICK_RANGE[asset_class]
        if ticks is None:
            return MappingError(
                code="UnsupportedExpiry", message=f"Deriv has no tick contracts on {asset}"
            )
        low, high = ticks
        if not low <= expiry.amount <= high:
            return MappingError(
                code="UnsupportedExpiry",
                message=f"{expiry.amount} ticks on {asset}: Deriv allows {low}-{high}",
            )
        return expiry.amount, "t"
    low, high = SECONDS_RANGE[asset_class]
    if not low <= expiry.amount <= high:
        return MappingError(
            code="UnsupportedExpiry",
            message=f"{expiry.amount}s on {asset}: Deriv allows {low}-{high} seconds",
        )
    return expiry.amount, "s"


# Stake limits of one Rise/Fall contract, in the account currency. Deriv states them for
# its fiat currencies; the router checks only those, and leaves any other currency to
# Deriv's own check at purchase (the order is then rejected with Deriv's message).
MIN_STAKE = Decimal("0.35")
MAX_STAKE = Decimal("50000")
STAKE_LIMIT_CURRENCIES = frozenset({"USD", "EUR", "GBP", "AUD"})
