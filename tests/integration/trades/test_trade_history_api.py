"""GET /api/v1/orders and /orders.csv on the live API: the fast store's recent trades
merged with MongoDB's older ones, filtered, whole at once."""

from __future__ import annotations

import csv
import io
import time
from decimal import Decimal

from apps.core.db import connect_db
from apps.core.ids import new_id
from apps.core.messages import Direction, Execution, ExecutionState, Outcome
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.ledger.book import order_write
from apps.ledger.recent import RecentTrades
from tests.fixtures.live_api import Api


def trade(user_id: str, signal_id: str, state: ExecutionState, **extra: object) -> Execution:
    return Execution(
        order_id=f"{signal_id}.sub-{user_id}",
        signal_id=signal_id,
        channel_id=str(extra.pop("channel_id", "ch-a")),
        subscription_id=f"sub-{user_id}",
        user_id=user_id,
        state=state,
        at=float(extra.pop("at", time.time())),  # type: ignore[arg-type]
        broker_kind="deriv",
        stake=Decimal("5"),
        currency="USD",
        asset="R_50",
        direction=Direction.CALL,
        expiry_seconds=120,
        **extra,  # type: ignore[arg-type]
    )


async def test_recent_and_stored_trades_are_one_history(http: Api, settings: Settings) -> None:
    me, other = await http.user(prefix="trader"), await http.user(prefix="other")
    now = time.time()
    old_signal, mid_signal, new_signal = (new_id(int((now - d) * 1000)) for d in (86400 * 3, 60, 1))
    # Three days ago, in MongoDB only (the fast store let it go); another user's trade.
    old = trade(me.id, old_signal, ExecutionState.PLACED, at=now - 86400 * 3, contract_id="1")
    old_won = trade(
        me.id, old_signal, ExecutionState.SETTLED, outcome=Outcome.WON, profit=Decimal("4.5")
    )
    theirs = trade(other.id, old_signal, ExecutionState.PLACED, contract_id="9")
    # A minute ago: in MongoDB as placed, settled since in the fast store only.
    mid = trade(me.id, mid_signal, ExecutionState.PLACED, at=now - 60, contract_id="2")
    mid_lost = trade(
        me.id,
        mid_signal,
        ExecutionState.SETTLED,
        outcome=Outcome.LOST,
        profit=Decimal("-5"),
        entry_spot=Decimal("10.25"),
        exit_spot=Decimal("10.20"),
    )
    # Just now, in another channel, in the fast store only.
    new = trade(
        me.id, new_signal, ExecutionState.PLACED, channel_id="ch-b", contract_id="3", at=now
    )
    redis = connect_redis(settings.redis_url)
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    try:
        await mongo[settings.mongodb_database]["orders"].bulk_write(
            [order_write(e) for e in (old, old_won, theirs, mid)]
        )
        await RecentTrades(redis, Topology(settings.namespace)).write([mid, mid_lost, new])

        async def ids(query: str = "") -> list[str]:
            trades = await http.ok("GET", f"/api/v1/orders{query}", me)
            return [t["contract_id"] for t in trades]

        assert await ids() == ["3", "2", "1"]  # newest first, the other user's not shown
        assert await ids("?outcome=open") == ["3"]
        assert await ids("?outcome=lost") == ["2"]  # settled in the fast store only
        assert await ids("?outcome=won") == ["1"]  # settled in MongoDB only
        assert await ids("?channel_id=ch-b") == ["3"]
        assert await ids(f"?since={now - 3600:.0f}") == ["3", "2"]
        assert await ids(f"?until={now - 3600:.0f}") == ["1"]
        assert await ids("?limit=1") == ["3"]
        [lost] = await http.ok("GET", "/api/v1/orders?outcome=lost", me)
        assert lost["state"] == "placed" and lost["outcome"] == "lost"
        assert (lost["entry_spot"], lost["exit_spot"], lost["profit"]) == ("10.25", "10.20", "-5")
        assert (lost["asset"], lost["direction"], lost["expiry_seconds"]) == ("R_50", "CALL", 120)
        assert lost["at"] == mid.at  # the placement's instant, from the other word

        answer = await http.call("GET", "/api/v1/orders.csv?since=2000-01-01", me)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert [r["contract_id"] for r in rows] == ["3", "2", "1"]
        assert rows[1]["exit_spot"] == "10.20" and rows[0]["outcome"] == ""

        for query in ("?outcome=maybe", "?limit=900", "?since=soon", "?state=settled"):
            for path in ("/api/v1/orders", "/api/v1/orders.csv"):
                bad = await http.call("GET", path + query, me)
                assert bad.status_code == 400, (path, query, bad.text)
                assert "Traceback" not in bad.text
                assert bad.json()["error"]["message"]
    finally:
        await redis.aclose()
        mongo.close()
