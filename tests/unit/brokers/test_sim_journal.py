"""The simulator's journal gives back what was appended, in order, across a kill."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from apps.brokers.deriv.simulator import SimConfig
from apps.brokers.deriv.simulator.broker import DerivSimulator
from apps.brokers.deriv.simulator.journal import JOURNAL_FILE, Journal, Opened, Sold


async def test_records_come_back_in_order_and_a_torn_last_line_is_cut_off(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path)
    assert journal.replay() == []
    opened = Opened("CR1", "token", "USD", Decimal("100.00"), True)
    sold = Sold(7, "won", Decimal("19.50"), 1_700_000_000, 9, 1234.5)
    journal.append(opened)
    journal.append(sold)
    await journal.close()
    with (tmp_path / JOURNAL_FILE).open("ab") as file:
        file.write(b'["sell",8,"lo')  # a kill in the middle of a write

    again = Journal(tmp_path)
    assert again.replay() == [opened, sold]
    again.append(opened)
    await again.close()
    assert Journal(tmp_path).replay() == [opened, sold, opened]


async def test_a_revoked_token_stays_revoked_after_a_restart(tmp_path: Path) -> None:
    config = SimConfig()
    first = DerivSimulator(config, Journal(tmp_path))
    account = first.create_account("USD", Decimal(100))
    old_token = account.token
    new_token = (first.revoke(account.loginid) or {})["token"]
    assert first.journal is not None
    await first.journal.close()

    again = DerivSimulator(SimConfig(), Journal(tmp_path))
    assert old_token not in again.by_token
    assert again.by_token[new_token].loginid == account.loginid
    assert first.revoke("CR-none") is None
