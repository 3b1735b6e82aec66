"""Per-signal results and each channel's track record, kept by the ledger.

MongoDB ``signal_results`` holds one document per signal (``_id`` = signal id): the
signal's facts (channel, when it was sent, its stake and asset — from its record), its
copy-delay histogram (from the signal's book in Redis), the first settlement among its
orders (``first``) and what that makes of it (``outcome``, ``profit_at_stake``,
``settled_at``: :func:`apps.core.track_record.result_of`). A channel's track record in
``channel_stats`` (``track``, ``first_signal_at``, ``last_signal_at``, ``record_days``,
``assets``) is recomputed from that channel's results — its signals, never its orders.

Guarantees:

- Idempotent under redelivery and in any arrival order: every write sets what the facts
  say, and ``first`` is replaced only by an earlier settlement (by time, then order id),
  in one conditional update, so two ledgers racing on a signal agree.
- A channel's record is recomputed whenever one of its signals is touched, and at least
  every ``TRACK_MAX_AGE`` seconds (:meth:`TrackKeeper.refresh_stale`), because windows
  move with time even when no signal arrives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from pymongo import UpdateOne

from apps.core.messages import Execution, ExecutionState
from apps.core.track_record import (
    Delays,
    Settlement,
    SignalResult,
    delays_from_doc,
    result_of,
    track_fields,
)

log = logging.getLogger("ledger.track")

RESULTS = "signal_results"
# A channel's windows are recomputed at least this often (seconds).
TRACK_MAX_AGE = 3600.0
_PROJECTION = {
    "created_at": 1,
    "stake": 1,
    "asset": 1,
    "first": 1,
    "delays": 1,
}


def _decimal(value: Any) -> Decimal:
    """A stored amount: text, or BSON Decimal128 (the API's odmantic records)."""
    to_decimal = getattr(value, "to_decimal", None)
    return to_decimal() if to_decimal else Decimal(str(value))


def signal_facts(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a result keeps of the signal's record (``signals`` collection)."""
    return {
        "channel_id": record["channel_id"],
        "created_at": float(record["created_at"]),
        "stake": str(_decimal(record["stake"])),
        "asset": record["asset"],
    }


def settlement_of(e: Execution) -> Settlement | None:
    if (
        e.state is not ExecutionState.SETTLED
        or e.outcome is None
        or e.profit is None
        or e.stake is None
    ):
        return None
    return Settlement(
        order_id=e.order_id, at=e.at, outcome=e.outcome.value, profit=e.profit, stake=e.stake
    )


def settlement_doc(s: Settlement) -> dict[str, Any]:
    return {
        "order_id": s.order_id,
        "at": s.at,
        "outcome": s.outcome,
        "profit": str(s.profit),
        "stake": str(s.stake),
    }


def settlement_from_doc(doc: Mapping[str, Any] | None) -> Settlement | None:
    if not doc:
        return None
    return Settlement(
        order_id=doc["order_id"],
        at=float(doc["at"]),
        outcome=doc["outcome"],
        profit=Decimal(doc["profit"]),
        stake=Decimal(doc["stake"]),
    )


def result_from_doc(doc: Mapping[str, Any]) -> SignalResult | None:
    """A stored result as the definition reads it; None until the signal's record is in."""
    if doc.get("stake") is None or doc.get("created_at") is None:
        return None
    return result_of(
        signal_id=doc["_id"],
        created_at=float(doc["created_at"]),
        stake=Decimal(doc["stake"]),
        asset=doc.get("asset", ""),
        settlement=settlement_from_doc(doc.get("first")),
        delays=delays_from_doc(doc.get("delays")),
    )


def _earlier(s: Settlement) -> dict[str, Any]:
    """Matches a result whose ``first`` settlement is absent or later than ``s``."""
    return {
        "$or": [
            {"first": None},
            {"first.at": {"$gt": s.at}},
            {"first.at": s.at, "first.order_id": {"$gt": s.order_id}},
        ]
    }


class TrackKeeper:
    def __init__(self, mongo_db: Any) -> None:
        self.results = mongo_db[RESULTS]
        self.signals = mongo_db["signals"]
        self.channel_stats = mongo_db["channel_stats"]

    async def ensure_indexes(self) -> None:
        """The index a channel's recompute reads its results by."""
        await self.results.create_index([("channel_id", 1), ("created_at", 1)])

    async def record_signals(self, records: Iterable[Mapping[str, Any]]) -> None:
        """The facts of stored signals (called as the ledger writes their records): a
        signal counts as sent from now on, and one whose executions came first gets its
        result now."""
        facts = {r["_id"]: signal_facts(r) for r in records}
        if not facts:
            return
        await self.results.bulk_write(
            [UpdateOne({"_id": i}, {"$set": f}, upsert=True) for i, f in facts.items()],
            ordered=False,
        )
        await self._derive(list(facts))
        for channel_id in {f["channel_id"] for f in facts.values()}:
            await self.refresh_channel(channel_id)

    async def update(
        self,
        touched: Mapping[str, str],
        delays: Mapping[str, Delays],
        executions: Iterable[Execution],
    ) -> None:
        """Bring the results of the ``touched`` signals (signal id → channel id) up to
        date with their books' ``delays`` and the settlements among ``executions``, then
        recompute the track record of each channel concerned."""
        if not touched:
            return
        ids = list(touched)
        records = {d["_id"]: d async for d in self.signals.find({"_id": {"$in": ids}})}
        writes = []
        for signal_id, channel_id in touched.items():
            fields: dict[str, Any] = {"channel_id": channel_id}
            # An empty histogram is a book Redis has let go of, not a signal without delays.
            if (held := delays.get(signal_id)) is not None and held.n:
                fields["delays"] = held.doc()
            if (record := records.get(signal_id)) is not None:
                fields |= signal_facts(record)
            writes.append(UpdateOne({"_id": signal_id}, {"$set": fields}, upsert=True))
        await self.results.bulk_write(writes, ordered=False)

        firsts: dict[str, Settlement] = {}
        for e in executions:
            s = settlement_of(e)
            if s is not None and e.signal_id in touched:
                earliest = firsts.get(e.signal_id)
                if earliest is None or s.key() < earliest.key():
                    firsts[e.signal_id] = s
        for signal_id, s in firsts.items():
            await self.results.update_one(
                {"_id": signal_id, **_earlier(s)}, {"$set": {"first": settlement_doc(s)}}
            )

        await self._derive(ids)
        for channel_id in set(touched.values()):
            await self.refresh_channel(channel_id)

    async def _derive(self, ids: list[str]) -> None:
        """Write what the facts make of each signal (outcome, profit at stake)."""
        derived = []
        async for doc in self.results.find({"_id": {"$in": ids}}):
            result = result_from_doc(doc)
            if result is None:
                log.warning(
                    "signal %s: no record yet; its result waits for it",
                    doc["_id"],
                    extra={"signal_id": doc["_id"]},
                )
                continue
            derived.append(
                UpdateOne(
                    {"_id": result.signal_id},
                    {
                        "$set": {
                            "outcome": result.outcome,
                            "profit_at_stake": None
                            if result.profit_at_stake is None
                            else str(result.profit_at_stake),
                            "settled_at": result.settled_at,
                        }
                    },
                )
            )
        if derived:
            await self.results.bulk_write(derived, ordered=False)

    async def channel_results(self, channel_id: str) -> list[SignalResult]:
        cursor = self.results.find({"channel_id": channel_id}, _PROJECTION)
        return [r async for doc in cursor if (r := result_from_doc(doc)) is not None]

    async def refresh_channel(self, channel_id: str, now: float | None = None) -> None:
        """Recompute the channel's track record from its signals' results."""
        now = time.time() if now is None else now
        fields = track_fields(await self.channel_results(channel_id), now)
        await self.channel_stats.update_one(
            {"_id": channel_id},
            {"$set": {**fields, "track_updated_at": now, "updated_at": now}},
            upsert=True,
        )

    async def refresh_stale(self, now: float | None = None, max_age: float = TRACK_MAX_AGE) -> int:
        """Recompute the records older than ``max_age``; how many were."""
        now = time.time() if now is None else now
        stale = self.channel_stats.find(
            {"$or": [{"track_updated_at": None}, {"track_updated_at": {"$lt": now - max_age}}]},
            {"_id": 1},
        )
        channels = [doc["_id"] async for doc in stale]
        for channel_id in channels:
            await self.refresh_channel(channel_id, now)
        return len(channels)
