"""`copier brokers list` says which accounts need re-linking, and why."""

from __future__ import annotations

from cli.manage import BROKER_COLUMNS, account_status, broker_rows


def test_an_account_the_broker_refused_says_so_with_the_reason() -> None:
    refused = {
        "id": "a1",
        "kind": "iqoption",
        "label": "iq",
        "status": "needs_relink",
        "relink_reason": "Invalid credentials",
    }
    assert account_status(refused) == "needs re-linking: Invalid credentials"
    (row,) = broker_rows([refused])
    assert dict(zip(BROKER_COLUMNS, row, strict=True))["status"] == account_status(refused)


def test_an_active_account_and_one_from_an_older_api_read_active() -> None:
    assert account_status({"status": "active"}) == "active"
    assert account_status({}) == "active"
