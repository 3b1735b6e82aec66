"""Refused credentials → the broker account needs re-linking (:mod:`apps.core.relink`).

The ledger reads every execution once at least, so it is where a worker's
``account_refused`` becomes durable: the executions' message is acked only after
:func:`mark_refused_accounts` returned, so a crash at any step is repaired by the
redelivery. Every step is idempotent, and the steps run in an order a repeat completes:

1. the account is marked ``needs_relink`` with the broker's reason and the time, unless it
   is already, or its credentials were verified after the refusal (the refusal was of the
   credentials a re-link replaced);
2. if the account needs re-linking, its active subscriptions the subscriber has not paused
   are paused with that reason in MongoDB;
3. the routing records of its subscriptions paused for re-linking are rewritten in Redis,
   so the router refuses their next orders at once.

Steps 2 and 3 run whenever a refusal of a marked account arrives: a ledger that stopped
between two steps finishes them on the redelivery, and orders already on their way when
the account was marked cost one MongoDB query each batch, not a state change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from apps.core.messages import Execution
from apps.core.relink import (
    BROKER_ACCOUNTS_COLLECTION,
    NEEDS_RELINK,
    SUBSCRIPTIONS_COLLECTION,
    Refusal,
    latest_per_account,
    paused_for_relink,
    refusals_by_subscription,
    relink_pause_reason,
)
from apps.core.topology import Topology
from apps.ledger.pauses import pause_routing

log = logging.getLogger("ledger.relink")


async def mark_refused_accounts(
    db: Any, redis: Redis, topology: Topology, executions: Iterable[Execution]
) -> list[str]:
    """Apply the refusals among ``executions``; the accounts newly marked ``needs_relink``.

    ``db``: the motor database the ledger writes.
    """
    refusals = refusals_by_subscription(executions)
    if not refusals:
        return []
    subscriptions = db[SUBSCRIPTIONS_COLLECTION]
    rows = await subscriptions.find(
        {"_id": {"$in": list(refusals)}}, {"broker_account_id": 1}
    ).to_list(None)
    account_of = {row["_id"]: row["broker_account_id"] for row in rows}
    marked = []
    for account_id, refusal in latest_per_account(refusals, account_of).items():
        if await _mark(db, redis, topology, account_id, refusal):
            marked.append(account_id)
    return marked


async def _mark(
    db: Any, redis: Redis, topology: Topology, account_id: str, refusal: Refusal
) -> bool:
    accounts = db[BROKER_ACCOUNTS_COLLECTION]
    refused_at = datetime.fromtimestamp(refusal.at, UTC)
    changed = await accounts.update_one(
        {
            "_id": account_id,
            "status": {"$ne": NEEDS_RELINK},
            "$or": [{"verified_at": None}, {"verified_at": {"$lte": refused_at}}],
        },
        {
            "$set": {
                "status": NEEDS_RELINK,
                "relink_reason": refusal.reason,
                "relink_since": datetime.now(UTC),
            }
        },
    )
    account = await accounts.find_one({"_id": account_id}, {"status": 1, "relink_reason": 1})
    if account is None or account.get("status") != NEEDS_RELINK:
        return False  # deleted, or re-linked since the refusal
    reason = relink_pause_reason(account.get("relink_reason") or "")
    subscriptions = db[SUBSCRIPTIONS_COLLECTION]
    active = {"broker_account_id": account_id, "status": "active"}
    await subscriptions.update_many(
        {**active, "paused": False}, {"$set": {"paused": True, "paused_reason": reason}}
    )
    paused = await subscriptions.find(
        {**active, "paused": True}, {"channel_id": 1, "paused_reason": 1}
    ).to_list(None)
    await pause_routing(
        redis,
        topology,
        [
            (row["channel_id"], row["_id"], row["paused_reason"])
            for row in paused
            if paused_for_relink(row.get("paused_reason") or "")
        ],
    )
    if changed.modified_count:
        log.warning(
            "broker account %s needs re-linking (%d subscriptions paused): %s",
            account_id,
            len(paused),
            refusal.reason,
        )
    return bool(changed.modified_count)
