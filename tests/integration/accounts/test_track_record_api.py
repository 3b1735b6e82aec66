"""The public track record and signal history of a channel, over the API on the real
servers; the per-signal results are written by the ledger's own code (TrackKeeper)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from apps.core.messages import Execution, ExecutionState, Outcome
from apps.core.records import SignalRecord
from apps.core.track_record import Delays
from apps.ledger.track import TrackKeeper
from tests.fixtures.live_api import Api
from tests.integration.accounts.conftest import Stores


async def settle_past_signal(stores: Stores, channel_id: str) -> SignalRecord:
    """A signal sent an hour ago (expired) whose first settled order won 1.74 on a stake
    of 2: worth 8.70 at the signal's stake of 10."""
    sent = time.time() - 3600
    record = SignalRecord(
        id="00PASTSIGNAL0000000000000",  # sorts before today's ids
        channel_id=channel_id,
        sender_id="provider",
        asset="EURUSD",
        direction="CALL",
        expiry_seconds=60,
        stake=Decimal("10"),
        created_at=sent,
        valid_until=sent + 30,
    )
    await stores.db.save(record)
    keeper = TrackKeeper(stores.db.database)
    await keeper.record_signals([record.model_dump_doc()])
    settled = Execution(
        order_id=f"{record.id}.sub1",
        signal_id=record.id,
        channel_id=channel_id,
        subscription_id="sub1",
        user_id="u1",
        state=ExecutionState.SETTLED,
        at=sent + 61,
        stake=Decimal("2"),
        outcome=Outcome.WON,
        profit=Decimal("1.74"),
    )
    await keeper.update({record.id: channel_id}, {record.id: Delays()}, [settled])
    return record


async def test_past_signals_are_public_and_current_ones_only_for_the_channel_and_its_subscribers(
    api: Api, stores: Stores
) -> None:
    owner = await api.user("provider", "owner")
    other = await api.user("provider", "other")
    subscriber = await api.user("subscriber", "sub")
    channel_id = await api.channel(owner)
    await api.subscribe(subscriber, channel_id, await api.broker_account(subscriber))
    past = await settle_past_signal(stores, channel_id)
    current = await api.ok(
        "POST",
        f"/api/v1/channels/{channel_id}/signals",
        owner,
        json={"asset": "EURUSD", "direction": "PUT", "expiry_seconds": 60, "stake": "5"},
    )
    path = f"/api/v1/channels/{channel_id}/signals"

    async def ids(user: Any) -> list[str]:
        return [s["signal_id"] for s in await api.ok("GET", path, user)]

    assert await ids(None) == [past.id]
    assert await ids(other) == [past.id]
    assert await ids(owner) == [current["signal_id"], past.id]
    assert await ids(subscriber) == [current["signal_id"], past.id]

    shown = (await api.ok("GET", path))[0]
    assert shown["outcome"] == "won"
    assert Decimal(str(shown["profit_at_stake"])) == Decimal("8.70")
    mine = await api.ok("GET", path, owner)
    assert mine[0]["outcome"] is None and mine[0]["profit_at_stake"] is None

    bad = await api.call("GET", path, headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401, bad.text
    missing = await api.call("GET", "/api/v1/channels/nope/signals")
    assert missing.status_code == 404, missing.text
    assert "message" in missing.json()["error"]


async def test_the_track_record_is_public_and_the_channel_shows_its_win_rate_per_signal(
    api: Api, stores: Stores
) -> None:
    owner = await api.user("provider", "owner")
    subscriber = await api.user("subscriber", "sub")
    channel_id = await api.channel(owner)
    await api.subscribe(subscriber, channel_id, await api.broker_account(subscriber))
    past = await settle_past_signal(stores, channel_id)

    record = await api.ok("GET", f"/api/v1/channels/{channel_id}/track-record")
    assert record["channel_id"] == channel_id
    assert set(record["windows"]) == {"7d", "30d", "90d", "all"}
    for window in record["windows"].values():
        assert window == {
            "signals": 1,
            "settled": 1,
            "won": 1,
            "lost": 0,
            "win_rate": 1.0,
            "return_on_stake": "0.8700",
            "profit": "8.70",
            "max_drawdown": "0.00",
            "avg_delay_ms": None,
            "p95_delay_ms": None,
        }
    assert record["first_signal_at"] == past.created_at and record["record_days"] == 0
    assert record["equity"] == [
        {"at": past.created_at + 61, "profit": "8.70", "signal_id": past.id}
    ]
    today = datetime.now(UTC).date().isoformat()
    assert record["subscribers"] == [{"day": today, "count": 1}]

    channel = await api.ok("GET", f"/api/v1/channels/{channel_id}")
    performance = channel["performance"]
    assert (performance["wins"], performance["losses"]) == (1, 0)
    assert Decimal(str(performance["win_rate"])) == 1

    missing = await api.call("GET", "/api/v1/channels/nope/track-record")
    assert missing.status_code == 404, missing.text


async def test_a_channel_without_signals_has_an_empty_record(api: Api) -> None:
    owner = await api.user("provider", "owner")
    channel_id = await api.channel(owner)
    record = await api.ok("GET", f"/api/v1/channels/{channel_id}/track-record")
    assert record["windows"]["all"]["signals"] == 0
    assert record["windows"]["all"]["win_rate"] is None
    assert record["equity"] == [] and record["subscribers"] == []
    assert record["first_signal_at"] is None and record["record_days"] == 0
    channel = await api.ok("GET", f"/api/v1/channels/{channel_id}")
    assert channel["performance"]["win_rate"] is None
