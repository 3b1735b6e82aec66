"""The Deriv simulator's durable state: an append-only journal of JSON lines in its data dir.

Three kinds of record, each a compact JSON array: an account opened, a contract bought,
a contract sold. Replaying them in order rebuilds every account (balance: the opening
balance, less each stake, plus each payout won), every contract and the ledger, so a
restarted simulator authorizes the same tokens, shows the same balances and still
settles the contracts that were open.

Records are buffered and appended in batches from a worker thread, never on the event
loop; a batch is written within ``FLUSH_SECONDS`` of its first record and whatever is
buffered is written on a clean stop. A killed simulator loses at most the last batch
(the file is flushed to the OS, not fsynced: it survives the process, not the machine);
a line torn by the kill is cut off at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

FLUSH_SECONDS = 0.05
JOURNAL_FILE = "deriv-sim.jsonl"

_log = logging.getLogger(__name__)


class Opened(msgspec.Struct, array_like=True, tag="account"):
    loginid: str
    token: str
    currency: str
    balance: Decimal  # the opening balance
    is_virtual: bool


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


Record = Opened | Bought | Sold

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Record)


class Journal:
    """One simulator's journal file; :meth:`replay` once, then :meth:`append`."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / JOURNAL_FILE
        self._file: BinaryIO | None = None
        self._pending: list[bytes] = []
        self._writer: asyncio.Task[None] | None = None

    def replay(self) -> list[Record]:
        """Every record written so far, in order; opens the file for appending."""
        records: list[Record] = []
        data = self.path.read_bytes() if self.path.exists() else b""
        whole = data.rfind(b"\n") + 1
        for line in data[:whole].splitlines():
            try:
                records.append(_decoder.decode(line))
            except msgspec.DecodeError:  # never written by this code: say so, keep the rest
                _log.error("unreadable journal line skipped: %.200r", line)
        self._file = self.path.open("ab")
        if whole < len(data):  # the last line was torn by a kill: new lines start clean
            self._file.truncate(whole)
        return records

    def append(self, record: Record) -> None:
        self._pending.append(_encoder.encode(record))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_soon())

    async def _write_soon(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(FLUSH_SECONDS)  # gather a batch
                lines, self._pending = self._pending, []
                await asyncio.to_thread(self._write, lines)
        finally:
            self._writer = None

    def _write(self, lines: list[bytes]) -> None:
        assert self._file is not None, "replay() opens the journal"
        self._file.write(b"\n".join(lines) + b"\n")
        self._file.flush()

    async def close(self) -> None:
        """Write what is buffered and close the file."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer
        if self._pending and self._file is not None:
            lines, self._pending = self._pending, []
            self._write(lines)
        if self._file is not None:
            self._file.close()
            self._file = None
