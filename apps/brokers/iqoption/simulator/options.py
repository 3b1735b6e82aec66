"""The IQ Option simulator's accounts and options, and every shape an option is shown in.

An option's ``option`` reply, its ``get-options`` row, its ``api_game_betinfo`` entry, its
closing pushes and its ledger row are made here, so every listing repeats the same
fields. An option ``win`` is "" while open, then "win", "loose" or "equal" (IQ Option's
spellings); its ``win_amount`` is what the balance is credited at expiry: the payout on a
win, nothing on a loss, the price back on an equal.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from apps.brokers.iqoption.simulator.journal import Bought, Closed
from apps.core.brokers.iqoption import BALANCE_TYPES, INSTRUMENT_TYPES

CENT = Decimal("0.01")
ZERO = Decimal(0)


def hash_password(password: str, salt: str | None = None) -> str:
    """``salt$hex``: a salted SHA-256. The simulator's passwords are random tokens it
    made (or a test's), so a fast hash hides them as well as a slow one would."""
    salt = salt or secrets.token_hex(8)
    return f"{salt}${hashlib.sha256(f'{salt}:{password}'.encode()).hexdigest()}"


def password_matches(password: str, stored: str) -> bool:
    salt, _, _ = stored.partition("$")
    return hmac.compare_digest(hash_password(password, salt), stored)


def hash_ssid(ssid: str) -> str:
    return hashlib.sha256(ssid.encode()).hexdigest()


@dataclass(slots=True)
class Account:
    user_id: int
    email: str
    password_hash: str = field(repr=False)
    currency: str
    practice_balance_id: int
    real_balance_id: int
    practice: Decimal
    real: Decimal
    two_factor: bool

    def balance_type_of(self, balance_id: int) -> str | None:
        if balance_id == self.practice_balance_id:
            return "practice"
        if balance_id == self.real_balance_id:
            return "real"
        return None

    def amount(self, balance_id: int) -> Decimal:
        return self.practice if balance_id == self.practice_balance_id else self.real

    def add(self, balance_id: int, amount: Decimal) -> None:
        if balance_id == self.practice_balance_id:
            self.practice += amount
        else:
            self.real += amount

    def profile(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "id": self.user_id,
            "email": self.email,
            "balance_id": self.real_balance_id,
            "balance": self.real,
            "currency": self.currency,
            "balances": [
                {
                    "id": self.real_balance_id,
                    "type": BALANCE_TYPES["real"],
                    "amount": self.real,
                    "currency": self.currency,
                },
                {
                    "id": self.practice_balance_id,
                    "type": BALANCE_TYPES["practice"],
                    "amount": self.practice,
                    "currency": self.currency,
                },
            ],
        }

    def created_row(self, password: str) -> dict[str, Any]:
        """The admin's answer for an account it opened: the only place a password shows."""
        return {
            "email": self.email,
            "password": password,
            "user_id": self.user_id,
            "practice_balance_id": self.practice_balance_id,
            "real_balance_id": self.real_balance_id,
        }

    def admin_row(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "email": self.email,
            "currency": self.currency,
            "two_factor": self.two_factor,
            "practice_balance_id": self.practice_balance_id,
            "practice_balance": self.practice,
            "real_balance_id": self.real_balance_id,
            "real_balance": self.real,
        }


@dataclass(slots=True)
class Option:
    option_id: int
    user_id: int
    balance_id: int
    request_id: str
    active_id: int
    option_type_id: int
    direction: str
    expired: int
    price: Decimal
    profit_income: int
    created_ms: int
    value: float  # the entry spot
    balance_type: str = "practice"
    win: str = ""
    win_amount: Decimal = ZERO
    exp_value: float = 0.0  # the exit spot, once closed
    closed: int | None = None

    @property
    def created(self) -> int:
        return self.created_ms // 1000

    @property
    def instrument_type(self) -> str:
        return INSTRUMENT_TYPES.get(self.option_type_id, "binary")

    @property
    def status(self) -> str:
        return {"": "open", "win": "won", "loose": "lost", "equal": "equal"}[self.win]

    @property
    def profit(self) -> Decimal:
        return self.win_amount - self.price if self.win else ZERO

    def payout(self) -> Decimal:
        return (self.price * self.profit_income / 100).quantize(CENT)

    def opened_body(self) -> dict[str, Any]:
        """The successful ``option`` reply's ``msg``."""
        return {
            "user_id": self.user_id,
            "id": self.option_id,
            "refund_value": 0,
            "price": self.price,
            "exp": self.expired,
            "created": self.created,
            "created_millisecond": self.created_ms,
            "time_rate": self.expired - self.created,
            "type": self.instrument_type,
            "act": self.active_id,
            "direction": self.direction,
            "exp_value": self.exp_value,
            "value": self.value,
            "profit_income": self.profit_income,
            "profit_return": 0,
        }

    def listed(self) -> dict[str, Any]:
        """A ``get-options`` row (no request_id: the broker keeps none)."""
        return {
            "id": self.option_id,
            "active_id": self.active_id,
            "direction": self.direction,
            "expired": self.expired,
            "price": self.price,
            "created": self.created,
            "created_millisecond": self.created_ms,
            "profit_income": self.profit_income,
            "value": self.value,
            "win": self.win,
            "win_amount": self.win_amount,
            "exp_value": self.exp_value,
            "type": self.instrument_type,
            "user_balance_id": self.balance_id,
        }

    def bet_info(self) -> dict[str, Any]:
        return {
            "win": self.win,
            "sum": self.price,
            "win_amount": self.win_amount,
            "value": self.value,  # the open value, as in the option reply
            "exp_value": self.exp_value,  # the close value
            "exp": self.expired,
        }

    def socket_closed(self) -> dict[str, Any]:
        return {
            "id": self.option_id,
            "win": self.win,
            "sum": self.price,
            "win_amount": self.win_amount,
            "value": self.value,  # the open value, as in the option reply
            "exp_value": self.exp_value,  # the close value
            "exp": self.expired,
        }

    def closed_body(self) -> dict[str, Any]:
        return {"option_id": self.option_id, "profit_amount": self.profit, "amount": self.price}

    def ledger_row(self) -> dict[str, Any]:
        return {
            "option_id": self.option_id,
            "user_id": self.user_id,
            "balance_id": self.balance_id,
            "balance_type": self.balance_type,
            "request_id": self.request_id,
            "order_id": self.request_id,
            "active_id": self.active_id,
            "option_type_id": self.option_type_id,
            "direction": self.direction,
            "expired": self.expired,
            "price": self.price,
            "created": self.created,
            "created_ms": self.created_ms,
            "status": self.status,
            "win_amount": self.win_amount if self.win else None,
            "profit": self.profit if self.win else None,
            "entry_spot": self.value,
            "exit_spot": self.exp_value if self.win else None,
        }


def bought_record(option: Option) -> Bought:
    return Bought(*(getattr(option, name) for name in Bought.__struct_fields__))


def closed_record(option: Option) -> Closed:
    assert option.closed is not None, "only a closed option has a Closed record"
    return Closed(option.option_id, option.win, option.win_amount, option.exp_value, option.closed)


def option_of(bought: Bought, balance_type: str) -> Option:
    return Option(**msgspec.structs.asdict(bought), balance_type=balance_type)


def apply_close(option: Option, closed: Closed) -> None:
    option.win = closed.win
    option.win_amount = closed.win_amount
    option.exp_value = closed.exp_value
    option.closed = closed.closed
