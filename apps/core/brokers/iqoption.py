"""IQ Option's login, its ``profile`` answer, its asset ids and its legal expiries: pure.

What more than one service needs of IQ Option's protocol (``../shared/brokers/iqoption.md``):
the API verifies an account when it is linked and the IQ Option worker logs its sessions
in with the same HTTP login and the same reading of the WebSocket's ``profile``; the
router maps a signal's asset and expiry to what IQ Option can take, and the simulator
validates purchases against the same expiry grid. No I/O here: each caller sends the
requests over its own connections.

IQ Option has no official API; the host names, numeric ids and statuses follow the widely
used reverse-engineered clients and are kept configurable (settings) or in one table here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import msgspec

# Canonical asset → IQ Option ``active_id``. Assets IQ Option does not list are absent,
# so a signal on them is rejected for IQ Option subscribers instead of guessed.
ACTIVE_IDS: dict[str, int] = {
    "EURUSD": 1,
    "EURGBP": 2,
    "GBPJPY": 3,
    "EURJPY": 4,
    "GBPUSD": 5,
    "USDJPY": 6,
    "AUDUSD": 99,
    "USDCAD": 100,
    "XAUUSD": 74,
}
ASSET_OF_ACTIVE: dict[int, str] = {active: asset for asset, active in ACTIVE_IDS.items()}

# ``user_balance_id`` types in ``profile.balances``.
BALANCE_TYPES: dict[str, int] = {"real": 1, "practice": 4}
BalanceType = Literal["real", "practice"]

# ``option_type_id``: turbo options end on one of the next 5 minute boundaries, binary
# options on the 15-minute grid at least 5 minutes ahead.
TURBO = 3
BINARY = 1
INSTRUMENT_TYPES = {TURBO: "turbo", BINARY: "binary"}
# Buying closes this long before an option's expiry (the current minute is skipped when
# this much or less remains).
PURCHASE_CUTOFF_SECONDS = 30
TURBO_BOUNDARIES = 5
BINARY_GRID_SECONDS = 15 * 60
BINARY_MIN_AHEAD_SECONDS = 5 * 60
BINARY_BOUNDARIES = 8  # two hours of the 15-minute grid

# Stakes IQ Option takes on a binary or turbo option, per balance currency unit.
MIN_STAKE = Decimal("1")
MAX_STAKE = Decimal("20000")

# Error statuses on a failed ``option`` reply (``msg.message`` carries the broker's text).
STATUS_OK = 2000
STATUS_SUSPENDED = 4100
STATUS_NO_FUNDS = 4101
STATUS_BAD_BALANCE = 4102
STATUS_BAD_EXPIRY = 4103
STATUS_TIME_OVER = 4104
STATUS_BAD_STAKE = 4105
STATUS_MARKET_CLOSED = 4106


# --- login (HTTP) ---------------------------------------------------------------------


class LoggedIn(msgspec.Struct, frozen=True, kw_only=True):
    ssid: str


class LoginRefused(msgspec.Struct, frozen=True, kw_only=True):
    """The credentials are refused for good (wrong password, blocked account)."""

    code: str
    message: str


class LoginLimited(msgspec.Struct, frozen=True, kw_only=True):
    """Too many logins: try again after ``ttl`` seconds."""

    ttl: float
    message: str


class TwoFactorRequired(msgspec.Struct, frozen=True, kw_only=True):
    """The account asks for a second factor, which an unattended copier cannot give."""

    method: str


class LoginUnreadable(msgspec.Struct, frozen=True, kw_only=True):
    reason: str


LoginAnswer = LoggedIn | LoginRefused | LoginLimited | TwoFactorRequired | LoginUnreadable


def login_form(identifier: str, password: str) -> dict[str, str]:
    """The form fields of ``POST /api/v2/login``."""
    return {"identifier": identifier, "password": password}


def _first_error(body: Mapping[str, Any]) -> tuple[str, str]:
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        return str(errors[0].get("code", "")), str(errors[0].get("title", ""))
    return "", ""


def read_login(status: int, body: Any) -> LoginAnswer:
    """The login's HTTP status and JSON body as a value (``body`` None: not JSON)."""
    if not isinstance(body, Mapping):
        if status >= 500:
            return LoginUnreadable(reason=f"the broker's login answered HTTP {status}")
        return LoginUnreadable(reason=f"the broker's login answered HTTP {status} without JSON")
    if body.get("code") == "verify":
        return TwoFactorRequired(method=str(body.get("method", "")))
    code, title = _first_error(body)
    if status == 429:
        data = body.get("data")
        raw_ttl = data.get("ttl") if isinstance(data, Mapping) else None
        try:
            ttl = float(raw_ttl) if raw_ttl is not None else 60.0
        except (TypeError, ValueError):
            ttl = 60.0
        return LoginLimited(ttl=max(ttl, 0.0), message=title or "login limit exceeded")
    if status in (400, 401, 403):
        return LoginRefused(code=code or str(status), message=title or "invalid credentials")
    if status != 200:
        return LoginUnreadable(reason=f"the broker's login answered HTTP {status}")
    data = body.get("data")
    ssid = data.get("ssid") if isinstance(data, Mapping) else body.get("ssid")
    if not isinstance(ssid, str) or not ssid:
        return LoginUnreadable(reason="the broker's login answer has no ssid")
    return LoggedIn(ssid=ssid)


# --- the WebSocket's profile ----------------------------------------------------------


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    type: int
    amount: Decimal
    currency: str


class Profile(msgspec.Struct, frozen=True, kw_only=True):
    user_id: int
    balances: tuple[Balance, ...]

    def balance(self, balance_type: BalanceType) -> Balance | None:
        wanted = BALANCE_TYPES[balance_type]
        return next((b for b in self.balances if b.type == wanted), None)


class SsidRefused(msgspec.Struct, frozen=True, kw_only=True):
    """``profile`` answered ``false``: the ssid is expired or revoked (log in again)."""


class ProfileUnreadable(msgspec.Struct, frozen=True, kw_only=True):
    reason: str


ProfileAnswer = Profile | SsidRefused | ProfileUnreadable


def ssid_message(ssid: str) -> dict[str, Any]:
    """Authenticates a WebSocket; answered by a ``profile`` message."""
    return {"name": "ssid", "msg": ssid, "request_id": ""}


def read_profile(msg: Any) -> ProfileAnswer:
    """The ``msg`` of a ``profile`` message; amounts never pass through a float."""
    if msg is False or msg is None:
        return SsidRefused()
    if not isinstance(msg, Mapping):
        return ProfileUnreadable(reason="the broker sent an unexpected profile")
    raw_balances = msg.get("balances")
    if not isinstance(raw_balances, list):
        return ProfileUnreadable(reason="the broker's profile lists no balances")
    balances = []
    for raw in raw_balances:
        if not isinstance(raw, Mapping):
            return ProfileUnreadable(reason="the broker's profile has an unreadable balance")
        try:
            amount = Decimal(str(raw.get("amount", "0")))
            balance = Balance(
                id=int(raw["id"]),
                type=int(raw["type"]),
                amount=amount,
                currency=str(raw.get("currency") or ""),
            )
        except (KeyError, TypeError, ValueError, InvalidOperation):
            return ProfileUnreadable(reason="the broker's profile has an unreadable balance")
        if not amount.is_finite():
            return ProfileUnreadable(reason="the broker's profile has a non-finite balance")
        balances.append(balance)
    try:
        user_id = int(msg.get("user_id") or msg.get("id") or 0)
    except (TypeError, ValueError):
        return ProfileUnreadable(reason="the broker's profile has an unreadable user id")
    return Profile(user_id=user_id, balances=tuple(balances))


# --- expiries -------------------------------------------------------------------------


class LegalExpiry(msgspec.Struct, frozen=True, kw_only=True):
    at: int  # epoch seconds, a whole minute
    option_type_id: int  # TURBO or BINARY


class NoLegalExpiry(msgspec.Struct, frozen=True, kw_only=True):
    reason: str


def legal_expiries(now: float) -> list[LegalExpiry]:
    """Every expiry IQ Option sells at ``now``, soonest first: the next 5 minute
    boundaries (turbo) skipping one with ``PURCHASE_CUTOFF_SECONDS`` or less left, then
    the 15-minute grid (binary) from 5 minutes ahead."""
    first_minute = math.floor(now / 60) * 60 + 60
    if first_minute - now <= PURCHASE_CUTOFF_SECONDS:
        first_minute += 60
    turbo = [
        LegalExpiry(at=first_minute + 60 * i, option_type_id=TURBO) for i in range(TURBO_BOUNDARIES)
    ]
    earliest_binary = now + BINARY_MIN_AHEAD_SECONDS
    first_quarter = math.ceil(earliest_binary / BINARY_GRID_SECONDS) * BINARY_GRID_SECONDS
    turbo_ends = {e.at for e in turbo}
    binary = [
        LegalExpiry(at=at, option_type_id=BINARY)
        for at in (first_quarter + BINARY_GRID_SECONDS * i for i in range(BINARY_BOUNDARIES))
        if at not in turbo_ends
    ]
    return turbo + binary


def purchasable(expiry_at: int, now: float) -> bool:
    """Whether an option ending at ``expiry_at`` may still be bought at ``now``."""
    return expiry_at - now > PURCHASE_CUTOFF_SECONDS


def choose_expiry(
    now: float, expiry_seconds: int, tolerance_seconds: int
) -> LegalExpiry | NoLegalExpiry:
    """The legal expiry nearest to ``now + expiry_seconds``, the earlier one on a tie, or
    why none is within ``tolerance_seconds`` of it."""
    wanted = now + expiry_seconds
    best = min(legal_expiries(now), key=lambda e: (abs(e.at - wanted), e.at))
    off = abs(best.at - wanted)
    if off > tolerance_seconds:
        return NoLegalExpiry(
            reason=(
                f"IQ Option has no expiry within {tolerance_seconds}s of {expiry_seconds}s:"
                f" the nearest it sells ends {round(best.at - now)}s after the signal"
            )
        )
    return best
