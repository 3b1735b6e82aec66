"""Broker accounts that need re-linking: the words and decisions the ledger and the API share.

A broker that refuses an account's credentials (a revoked Deriv token, a changed IQ Option
password) refuses every later order on it the same way. A worker reports such a refusal
as an execution with ``account_refused``; the ledger (:mod:`apps.ledger.relink`) then
marks the account ``needs_relink`` with the broker's reason, pauses its active
subscriptions with :func:`relink_pause_reason` and rewrites their routing records, so the
router refuses the next orders at once with that reason instead of sending each to the
broker. Re-linking (the API's ``PUT /api/v1/broker-accounts/{id}/credentials``) makes the
account active again and resumes exactly the subscriptions :func:`paused_for_relink`
recognises: a pause the subscriber chose has an empty reason and stays.

MongoDB's field and collection names are written here once for the ledger, which writes
the documents without the API's models (services share code only through apps.core);
tests/unit/accounts/test_relink_rules.py checks them against the models.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import msgspec

from apps.core.messages import Execution
from apps.core.routing import RoutingRecord

AccountStatus = Literal["active", "needs_relink"]
ACTIVE: AccountStatus = "active"
NEEDS_RELINK: AccountStatus = "needs_relink"

BROKER_ACCOUNTS_COLLECTION = "broker_accounts"
SUBSCRIPTIONS_COLLECTION = "subscriptions"

RELINK_PAUSE_PREFIX = "broker account needs re-linking"


def relink_pause_reason(broker_reason: str) -> str:
    """The pause reason of a subscription whose account needs re-linking; the router's
    rejection of its orders says exactly this."""
    return f"{RELINK_PAUSE_PREFIX}: {broker_reason}" if broker_reason else RELINK_PAUSE_PREFIX


def paused_for_relink(paused_reason: str) -> bool:
    """The pause was made by a refused account, so re-linking the account lifts it."""
    return paused_reason.startswith(RELINK_PAUSE_PREFIX)


def paused_record(record: RoutingRecord, reason: str) -> RoutingRecord:
    """The routing record of a subscription paused with ``reason``."""
    return msgspec.structs.replace(record, paused=True, paused_reason=reason)


@dataclass(frozen=True, slots=True)
class Refusal:
    """The broker's latest refusal of the credentials behind one subscription's orders."""

    reason: str
    at: float  # epoch seconds the worker saw it


def refusals_by_subscription(executions: Iterable[Execution]) -> dict[str, Refusal]:
    """One refusal per subscription (its latest), however many of its orders were refused:
    a signal fanned out to thousands of orders on one refused account is one change."""
    latest: dict[str, Refusal] = {}
    for execution in executions:
        if not execution.account_refused:
            continue
        known = latest.get(execution.subscription_id)
        if known is None or execution.at > known.at:
            latest[execution.subscription_id] = Refusal(execution.reason or "", execution.at)
    return latest


def latest_per_account(
    refusals: dict[str, Refusal], account_of: dict[str, str]
) -> dict[str, Refusal]:
    """The refusals of each broker account (``account_of``: subscription → account), its
    latest kept; subscriptions with no known account are left out."""
    by_account: dict[str, Refusal] = {}
    for subscription_id, refusal in refusals.items():
        account_id = account_of.get(subscription_id)
        if account_id is None:
            continue
        known = by_account.get(account_id)
        if known is None or refusal.at > known.at:
            by_account[account_id] = refusal
    return by_account
