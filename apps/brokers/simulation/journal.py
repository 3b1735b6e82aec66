"""A simulator's durable state: an append-only journal of JSON lines in its data dir.

A broker kind supplies its record types (a tagged union of msgspec Structs, e.g. an
account opened, a contract bought, a contract sold) and the file name; replaying the
records in order must rebuild its accounts, balances and ledger, so a restarted simulator
accepts the same credentials and still settles what was open.

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
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

FLUSH_SECONDS = 0.05

_log = logging.getLogger(__name__)
_encoder = msgspec.json.Encoder()


class JournalFile[R]:
    """One simulator's journal file; :meth:`replay` once, then :meth:`append`."""

    def __init__(self, data_dir: Path, file_name: str, record_type: Any) -> None:
        """``record_type``: the union of record Structs the file holds (``R``)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / file_name
        self._decoder: msgspec.json.Decoder[R] = msgspec.json.Decoder(record_type)
        self._file: BinaryIO | None = None
        self._pending: list[bytes] = []
        self._writer: asyncio.Task[None] | None = None

    def replay(self) -> list[R]:
        """Every record written so far, in order; opens the file for appending."""
        records: list[R] = []
        data = self.path.read_bytes() if self.path.exists() else b""
        whole = data.rfind(b"\n") + 1
        for line in data[:whole].splitlines():
            try:
                records.append(self._decoder.decode(line))
            except msgspec.DecodeError:  # never written by this code: say so, keep the rest
                _log.error("unreadable journal line skipped: %.200r", line)
        self._file = self.path.open("ab")
        if whole < len(data):  # the last line was torn by a kill: new lines start clean
            self._file.truncate(whole)
        return records

    def append(self, record: R) -> None:
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
