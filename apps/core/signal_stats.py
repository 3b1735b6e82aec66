"""How a signal's counts read: the ledger keeps them, the API shows them.

The ledger's book writes one Redis hash per signal (:meth:`Topology.signal_stats_key`):
a count per order state (in all and per broker kind, ``by:<kind>:<state>``), the fan-out's
shard totals, outcomes, profit in hundredths, the first and last placement times and the
histogram of the copy delays (:func:`apps.core.track_record.delays_from_hash`).
:func:`signal_counts_from` turns that hash (or an empty one, for a signal not counted yet)
into the figures every reader shows, so the ledger's MongoDB copy, the REST answer and the
live feed agree field for field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from apps.core.track_record import delays_from_hash

# The order states a signal's book counts, in the order they are shown.
COUNTED_STATES = ("placed", "rejected", "expired", "failed", "unknown")


def signal_counts_from(raw: dict[Any, Any]) -> dict[str, Any]:
    """Counts per state, the total, outcomes and latency figures of one signal's hash."""
    values = {_text(k): _text(v) for k, v in raw.items()}
    counts = {state: int(values.get(state, 0)) for state in COUNTED_STATES}
    # The total is known once every shard of the fan-out has reported its size.
    complete = "shards" in values and values.get("shards_seen") == values["shards"]
    total = int(values["total"]) if complete else None
    created = int(values.get("created_ms", 0)) or None
    first, last = values.get("first_placed_ms"), values.get("last_placed_ms")
    brokers: dict[str, dict[str, int]] = {}
    for key, value in values.items():
        if key.startswith("by:"):
            kind, _, state = key[3:].rpartition(":")
            if kind and state in COUNTED_STATES and int(value):
                brokers.setdefault(kind, dict.fromkeys(COUNTED_STATES, 0))[state] = int(value)
    return {
        "counts": {"total": total, **counts},
        # Counts per broker kind ("deriv", "iqoption"), for kinds with an order so far.
        "brokers": dict(sorted(brokers.items())),
        "done": total is not None and sum(counts.values()) >= total,
        "won": int(values.get("won", 0)),
        "lost": int(values.get("lost", 0)),
        "pnl": str(Decimal(int(values.get("pnl_minor", 0))).scaleb(-2)),
        "latency_ms": {
            "first_placed": int(first) - created if first and created else None,
            "last_placed": int(last) - created if last and created else None,
        },
        # Every placement's copy delay, as a histogram (the track record's average and p95).
        "delays": delays_from_hash(values).doc(),
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
