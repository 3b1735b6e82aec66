"""The simulator's connection: synchronous writes that keep their order, stream frames.

Stream messages are spliced from a pre-encoded envelope: byte for byte the reply.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from apps.brokers.deriv.simulator.connection import Connection, Subscription
from apps.brokers.deriv.simulator.wire import reply as _reply
from apps.brokers.simulation import encode as _encode


class SlowPeer:
    """An ASGI send that suspends while ``gate`` is closed, as uvicorn's does while the
    transport is paused (the peer is not reading)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.sent: list[str] = []
        self.fail = False

    async def __call__(self, event: Any) -> None:
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("peer gone")
        self.sent.append(event.get("text", event["type"]))


async def test_writes_go_out_at_once_and_in_order_while_the_peer_is_slow() -> None:
    peer = SlowPeer()
    conn = Connection(send_event=peer)

    conn.push_text("1")
    assert peer.sent == ["1"]  # written synchronously, no task scheduled

    peer.gate.clear()
    conn.push_text("2")  # suspends...
    conn.push_text("3")  # ...and this waits behind it
    await asyncio.sleep(0)
    assert peer.sent == ["1"]
    peer.gate.set()
    conn.push_text("4")  # still behind the backlog
    for _ in range(10):
        await asyncio.sleep(0)
    conn.push_text("5")  # backlog drained: synchronous again

    assert peer.sent == ["1", "2", "3", "4", "5"]
    assert not conn.tasks
    assert not conn.closed


async def test_a_failed_write_marks_the_connection_closed() -> None:
    peer = SlowPeer()
    peer.fail = True
    conn = Connection(send_event=peer)

    conn.push_text("1")
    conn.push_text("2")

    assert conn.closed
    assert peer.sent == []
    conn.drop()  # already closed: nothing more is sent
    assert peer.sent == []


async def test_drop_sends_one_close() -> None:
    peer = SlowPeer()
    conn = Connection(send_event=peer)

    conn.drop(1011, "bye")
    conn.drop(1011, "bye")
    conn.push_text("after")

    assert peer.sent == ["websocket.close"]


@pytest.mark.parametrize(
    "request_",
    [
        {"proposal_open_contract": 1, "subscribe": 1},
        {"proposal_open_contract": 1, "subscribe": 1, "req_id": 7},
        {"balance": 1, "subscribe": 1, "req_id": 3, "passthrough": {"a": ["é", 1.5, None]}},
        {"proposal_open_contract": 1, "contract_id": 250000001, "passthrough": {}},
    ],
)
def test_a_stream_frame_is_the_encoded_reply(request_: dict[str, Any]) -> None:
    kind = next(iter(request_))
    sub = Subscription(id="ab" * 16, kind=kind, request=request_)
    body = {"balance": Decimal("10.50"), "nested": {"x": [1, "two"]}, "profit": Decimal(0)}

    assert sub.frame(_encode(body)) == _encode(_reply(request_, kind, body, sub.id))
    assert sub.frame(_encode({})) == _encode(_reply(request_, kind, {}, sub.id))  # cached head
