"""`python -m benchmarks.trade_push`: what the per-user trade push costs an API instance
for 10,000 executions (20 batches of 500, as workers publish them), by how many users have
a socket open on it and how many of the executions are theirs.

The relay's dispatch (:meth:`apps.api.live.LiveRelay.push_trades`, everything the NATS
callback does for trades) runs in process on encoded batches, so the figure is the event
loop's time, without NATS; matched executions go into real sessions' queues
(:meth:`apps.api.signals.ws.Session.push_trade`). Median and best of several runs, in
milliseconds per 10,000 executions, to benchmarks/results/<date>-trade-push.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from apps.api.live import LiveRelay
from apps.api.signals.ws import Session
from apps.core.messages import Direction, Execution, ExecutionBatch, ExecutionState, encode
from apps.core.topology import Topology
from benchmarks.fanout.report import RESULTS, machine

EXECUTIONS = 10_000
PER_BATCH = 500
RUNS = 15
# (users with a socket open here, executions of theirs among the 10,000)
SCENARIOS = [
    (0, 0),
    (10, 0),
    (10, 10),
    (100, 0),
    (1_000, 0),
    (1_000, 1_000),
]


def batches(users: list[str]) -> list[bytes]:
    """10,000 placements of absent users, the first ``len(users)`` of them ``users``'."""
    owners = users + [f"absent{i:08d}" for i in range(EXECUTIONS - len(users))]
    out = []
    for start in range(0, EXECUTIONS, PER_BATCH):
        executions = [
            Execution(
                order_id=f"o{start + i}",
                signal_id="s1",
                channel_id="c1",
                subscription_id=f"sub{start + i}",
                user_id=owner,
                state=ExecutionState.PLACED,
                at=time.time(),
                broker_kind="deriv",
                stake=Decimal("10.00"),
                currency="USD",
                contract_id=f"{start + i}",
                buy_price=Decimal("10.00"),
                payout=Decimal("19.50"),
                latency_ms=120.0,
                asset="EURUSD",
                direction=Direction.CALL,
                expiry_seconds=60,
                signal_created_at=time.time(),
            )
            for i, owner in enumerate(owners[start : start + PER_BATCH])
        ]
        out.append(encode(ExecutionBatch(signal_id="s1", channel_id="c1", executions=executions)))
    return out


class Unread:
    """A socket nobody reads: frames stay in the session's queue."""

    async def send_text(self, text: str) -> None:
        raise AssertionError("the benchmark runs no writer")


def scenario(open_users: int, theirs: int) -> dict[str, Any]:
    relay = LiveRelay(None, None, Topology("bench"))  # type: ignore[arg-type]  # dispatch only
    users = [f"user{i:08d}" for i in range(open_users)]
    sessions = []
    for user_id in users:
        session = Session(Unread(), None, relay, None)  # type: ignore[arg-type]
        relay.listen_trades(user_id, session.push_trade)
        sessions.append(session)
    data = batches(users[:theirs])
    wall, handed = [], 0
    for _ in range(RUNS):
        for session in sessions:
            session.trades.clear()
        started = time.perf_counter()
        handed = sum(relay.push_trades(message) for message in data)
        wall.append((time.perf_counter() - started) * 1000)
    return {
        "open_users": open_users,
        "their_executions": theirs,
        "frames_pushed": handed,
        "ms_per_10k_median": round(statistics.median(wall), 3),
        "ms_per_10k_best": round(min(wall), 3),
        "ms_per_batch_of_500_median": round(statistics.median(wall) / len(data), 3),
    }


def main(out: Path | None = None) -> dict[str, Any]:
    report = {
        "benchmark": "trade-push",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "executions": EXECUTIONS,
        "per_batch": PER_BATCH,
        "runs": RUNS,
        "scenarios": [scenario(users, theirs) for users, theirs in SCENARIOS],
    }
    path = out or RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-trade-push.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["scenarios"], indent=2))
    print(f"written to {path}")
    return report


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
