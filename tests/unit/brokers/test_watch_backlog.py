"""An account stream's queued updates: all settled, without starving the event loop."""

from __future__ import annotations

import asyncio
from typing import Any

from apps.brokers.base import BrokerAccount, Settlement, SettlementResult
from apps.brokers.deriv.watch import AccountWatches, _AccountWatch, _Watched


def _update(contract_id: int, *, sold: bool) -> dict[str, Any]:
    return {
        "msg_type": "proposal_open_contract",
        "subscription": {"id": "sub-1"},
        "proposal_open_contract": {
            "contract_id": contract_id,
            "buy_price": "1.00",
            "is_expired": 1,
            "is_sold": int(sold),
            "status": "won" if sold else "open",
            "sell_price": "1.95" if sold else None,
            "sell_time": 1764600000 if sold else None,
        },
    }


async def test_a_backlog_of_updates_is_settled_in_turns_with_the_rest_of_the_loop() -> None:
    watches = AccountWatches(lambda account: None)  # type: ignore[arg-type, return-value]
    watch = _AccountWatch(BrokerAccount(token="tok-1", login="CR1", currency="USD"))
    settled: list[SettlementResult] = []
    for cid in range(1, 301):
        watch.contracts[cid] = _Watched(settled.append, check_at=1e12)
    stream: asyncio.Queue[Any] = asyncio.Queue()
    for cid in range(1, 301):  # as Deriv sends them: expired, then sold
        stream.put_nowait(_update(cid, sold=False))
        stream.put_nowait(_update(cid, sold=True))
    seen_at_turns: list[int] = []

    async def other_work() -> None:
        while True:
            seen_at_turns.append(len(settled))
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    reader = asyncio.create_task(watches._read(watch, None, stream))  # type: ignore[arg-type]
    while len(settled) < 300:
        await asyncio.sleep(0.01)
    reader.cancel()
    other.cancel()
    await asyncio.gather(reader, other, return_exceptions=True)

    assert [s.contract_id for s in settled if isinstance(s, Settlement)] == [
        str(c) for c in range(1, 301)
    ]
    assert all(isinstance(s, Settlement) and s.outcome == "won" for s in settled)
    assert not watch.contracts
    # 600 queued updates: the other task ran between slices of them, not only after.
    partial = [n for n in seen_at_turns if 0 < n < 300]
    assert len(partial) >= 600 // 64 - 1
