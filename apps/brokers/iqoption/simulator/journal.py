"""The IQ Option simulator's journal records: accounts, their secrets' hashes, options.

Each is a compact JSON array in the data dir's journal file
(:class:`apps.brokers.simulation.JournalFile`). Replaying them in order rebuilds every
account (each balance: its opening amount, less each price, plus each option's return),
the ssids still valid, every option and the ledger, so a restarted simulator accepts the
same passwords and ssids, shows the same balances and still settles the options that
were open.

No secret is written in clear: a password as a salted hash, an ssid as its SHA-256 (an
ssid is 128 random bits, so its plain hash cannot be reversed by guessing).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec

from apps.brokers.simulation import JournalFile

JOURNAL_FILE = "iqoption-sim.jsonl"


class Opened(msgspec.Struct, array_like=True, tag="account"):
    user_id: int
    email: str
    password_hash: str
    currency: str
    balance: Decimal  # the opening amount of each balance
    practice_balance_id: int
    real_balance_id: int
    two_factor: bool


class PasswordChanged(msgspec.Struct, array_like=True, tag="password"):
    """The password changed; every ssid of the user is revoked with it."""

    user_id: int
    password_hash: str


class Revoked(msgspec.Struct, array_like=True, tag="revoke"):
    """Every ssid of the user is revoked."""

    user_id: int


class SessionOpened(msgspec.Struct, array_like=True, tag="ssid"):
    user_id: int
    ssid_hash: str


class Bought(msgspec.Struct, array_like=True, tag="buy"):
    """An option's fields as booked. Declared here, not derived from the simulator's
    Option: the file's field order is its format, which a change there must not move."""

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
    value: float


class Closed(msgspec.Struct, array_like=True, tag="close"):
    option_id: int
    win: str  # win / loose / equal
    win_amount: Decimal
    exp_value: float
    closed: int


Record = Opened | PasswordChanged | Revoked | SessionOpened | Bought | Closed


class Journal(JournalFile[Record]):
    """The IQ Option simulator's journal in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, JOURNAL_FILE, Record)
