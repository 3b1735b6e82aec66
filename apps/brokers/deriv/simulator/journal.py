"""The Deriv simulator's journal records: an account opened, its token replaced, a contract
bought, a contract sold.

Each is a compact JSON array in the data dir's journal file
(:class:`apps.brokers.simulation.JournalFile`). Replaying them in order rebuilds every
account (balance: the opening balance, less each stake, plus each payout won), every
contract and the ledger, so a restarted simulator authorizes the same tokens, shows the
same balances and still settles the contracts that were open.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from apps.brokers.simulation import JournalFile

JOURNAL_FILE = "deriv-sim.jsonl"


class Opened(msgspec.Struct, array_like=True, tag="account"):
    loginid: str
    token: str
    currency: str
    balance: Decimal  # the opening balance
    is_virtual: bool


class Revoked(msgspec.Struct, array_like=True, tag="revoke"):
    """The account's token was revoked; ``token`` is the one that replaced it."""

    loginid: str
    token: str


class Bought(msgspec.Struct, array_like=True, tag="buy"):
    """A contract's fields as booked. Declared here, not derived from the simulator's
    Contract: the file's field order is its format, which a change there must not move."""

    contract_id: int
    loginid: str
    currency: str
    symbol: str
    contract_type: str
    buy_price: Decimal
    payout: Decimal
    purchase_time: int
    duration: int
    duration_unit: str
    date_expiry: int
    real_seconds: float
    buy_transaction_id: int
    passthrough: dict[str, Any] | None
    entry_tick: float
    booked_ms: float


class Sold(msgspec.Struct, array_like=True, tag="sell"):
    contract_id: int
    status: str  # won / lost
    sell_price: Decimal
    sell_time: int
    sell_transaction_id: int
    exit_tick: float


Record = Opened | Revoked | Bought | Sold


class Journal(JournalFile[Record]):
    """The Deriv simulator's journal in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, JOURNAL_FILE, Record)
