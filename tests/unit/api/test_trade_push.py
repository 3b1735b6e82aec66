"""The per-user trade push: which executions reach which listeners, as what frame, and a
slow socket's backlog that ends in one "resync" instead of growing. Pure: the relay's
dispatch and the session's queue are driven directly with encoded execution events."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import msgspec

from apps.api.live import LiveRelay
from apps.api.signals.ws import TRADE_BACKLOG, Session
from apps.api.trades.schemas import trade_from_execution
from apps.core.messages import (
    Direction,
    Execution,
    ExecutionBatch,
    ExecutionState,
    FanoutStarted,
    Outcome,
    encode,
)
from apps.core.topology import Topology


def execution(user_id: str, state: ExecutionState = ExecutionState.PLACED, **kw: Any) -> Execution:
    fields: dict[str, Any] = {
        "order_id": f"o-{user_id}",
        "signal_id": "s1",
        "channel_id": "c1",
        "subscription_id": f"sub-{user_id}",
        "user_id": user_id,
        "state": state,
        "at": 1_700_000_010.5,
        "broker_kind": "deriv",
        "asset": "EURUSD",
        "direction": Direction.CALL,
        "expiry_seconds": 60,
        "signal_created_at": 1_700_000_010.0,
        "stake": Decimal("10.00"),
        "currency": "USD",
        **kw,
    }
    return Execution(**fields)


def batch(*executions: Execution) -> bytes:
    return encode(ExecutionBatch(signal_id="s1", channel_id="c1", executions=list(executions)))


def relay() -> LiveRelay:
    return LiveRelay(None, None, Topology("t"))  # type: ignore[arg-type]  # dispatch only


def test_each_user_gets_only_their_own_executions_as_trade_frames() -> None:
    live = relay()
    alice: list[bytes] = []
    bob: list[bytes] = []
    live.listen_trades("alice", alice.append)
    live.listen_trades("bob", bob.append)
    handed = live.push_trades(
        batch(execution("alice", latency_ms=120.0), execution("carol"), execution("dave"))
    )
    assert handed == 1
    assert bob == []
    (frame,) = alice
    message = json.loads(frame)
    assert message["type"] == "trade"
    trade = message["trade"]
    assert trade["order_id"] == "o-alice"
    assert (trade["state"], trade["stake"], trade["asset"], trade["direction"]) == (
        "placed",
        "10.00",
        "EURUSD",
        "CALL",
    )
    assert (trade["at"], trade["latency_ms"], trade["outcome"]) == (1_700_000_010.5, 120.0, None)


def test_a_settlement_keeps_state_placed_and_says_when_it_settled() -> None:
    settled = execution(
        "alice",
        ExecutionState.SETTLED,
        at=1_700_000_070.0,
        outcome=Outcome.WON,
        profit=Decimal("8.50"),
    )
    trade = trade_from_execution(settled)
    assert (trade.state, trade.outcome, trade.profit) == ("placed", "won", Decimal("8.50"))
    assert (trade.at, trade.settled_at, trade.latency_ms) == (None, 1_700_000_070.0, None)


def test_every_socket_of_a_user_gets_the_frame_and_unlistening_stops_only_that_one() -> None:
    live = relay()
    first: list[bytes] = []
    second: list[bytes] = []
    stop_first = live.listen_trades("alice", first.append)
    live.listen_trades("alice", second.append)
    live.push_trades(batch(execution("alice")))
    stop_first()
    live.push_trades(batch(execution("alice", ExecutionState.REJECTED, reason="market closed")))
    assert len(first) == 1
    assert [json.loads(f)["trade"]["state"] for f in second] == ["placed", "rejected"]
    assert json.loads(second[-1])["trade"]["reason"] == "market closed"


def test_with_no_socket_open_a_batch_is_not_even_read() -> None:
    assert relay().push_trades(b"not json at all") == 0


def test_many_open_sockets_get_only_their_users_executions() -> None:
    live = relay()
    got: list[bytes] = []
    for i in range(1_000):
        live.listen_trades(f"listener{i}", got.append)
    assert live.push_trades(batch(*(execution(f"user{i}") for i in range(500)))) == 0
    assert live.push_trades(batch(execution("listener3"), execution("user1"))) == 1
    assert [json.loads(f)["trade"]["subscription_id"] for f in got] == ["sub-listener3"]


def test_fanout_announcements_and_garbage_carry_no_trade() -> None:
    live = relay()
    live.listen_trades("alice", lambda frame: None)
    started = FanoutStarted(
        signal_id="alice",
        channel_id="c1",
        shard=0,
        shards=1,
        total=3,
        signal_created_at=1.0,
        at=1.0,
    )
    assert live.push_trades(encode(started)) == 0
    assert live.push_trades(b'{"type": "executions", "user_id": "alice"') == 0


class StalledSocket:
    """A client that reads nothing until told to."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.reading = asyncio.Event()

    async def send_text(self, text: str) -> None:
        await self.reading.wait()
        self.sent.append(text)


async def test_a_stalled_socket_keeps_a_bounded_backlog_then_gets_one_resync() -> None:
    socket = StalledSocket()
    session = Session(socket, None, relay(), None)  # type: ignore[arg-type]  # queue only
    writer = asyncio.create_task(session.writer())
    frames = [
        msgspec.json.encode({"type": "trade", "trade": {"order_id": f"o{i}"}})
        for i in range(TRADE_BACKLOG * 3)
    ]
    for frame in frames:
        session.push_trade(frame)
    assert len(session.trades) < TRADE_BACKLOG  # bounded: the backlog was dropped
    assert session.resync_owed
    socket.reading.set()
    session.push_trade(b'{"type":"trade","trade":{"order_id":"late"}}')  # still dropped
    await session.outbox.put(None)
    await writer
    types = [json.loads(text)["type"] for text in socket.sent]
    assert types[-1] == "resync"
    assert types.count("resync") == 1
    assert len(types) <= TRADE_BACKLOG + 1
    # After the resync, pushes flow again.
    writer = asyncio.create_task(session.writer())
    session.push_trade(b'{"type":"trade","trade":{"order_id":"after"}}')
    await session.outbox.put(None)
    await writer
    assert json.loads(socket.sent[-1]) == {"type": "trade", "trade": {"order_id": "after"}}
