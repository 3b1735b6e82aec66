"""Open contracts are followed to settlement with the right outcome and profit."""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal

import pytest

from apps.brokers.base import Placed, Settlement
from apps.brokers.deriv.adapter import DerivAdapter
from apps.brokers.deriv.session import ConnectionLost
from tests.fixtures.deriv_sim import TIME_SCALED_WATCH_LEAD, SimHandle, make_order
from tests.fixtures.waiting import wait_for


@pytest.mark.parametrize("outcome", ["won", "lost"])
@pytest.mark.parametrize("direction", ["CALL", "PUT"])
async def test_contract_settles_with_the_right_profit(
    sim: SimHandle, adapter: DerivAdapter, outcome: str, direction: str
) -> None:
    account = await sim.account(balance="100")
    await sim.faults(force_outcome=outcome)
    placed = await adapter.place(make_order(account, direction=direction, stake="10.00"))
    assert isinstance(placed, Placed)

    settled = await asyncio.wait_for(
        adapter.follow_settlement(account, placed.contract_id), timeout=5
    )

    assert isinstance(settled, Settlement)
    assert settled.outcome == outcome
    if outcome == "won":
        assert settled.sell_price == placed.payout == Decimal("19.50")
        assert settled.profit == Decimal("9.50")
        assert await sim.balance(account.login) == Decimal("109.50")
    else:
        assert settled.sell_price == 0
        assert settled.profit == Decimal("-10.00")
        assert await sim.balance(account.login) == Decimal("90.00")
    [row] = await sim.ledger()
    assert row["status"] == outcome
    # The spots and the end instant are the broker's, as its ledger books them.
    assert settled.entry_spot == Decimal(str(row["entry_spot"]))
    assert settled.exit_spot == Decimal(str(row["exit_spot"]))
    assert settled.expiry_at == row["date_expiry"] == placed.expiry_at
    assert (settled.exit_spot > settled.entry_spot) == ((direction == "CALL") == (outcome == "won"))


async def test_tick_contracts_settle_from_the_price_feed(
    sim: SimHandle, adapter: DerivAdapter
) -> None:
    account = await sim.account()
    placed = [await adapter.place(make_order(account, ticks=t)) for t in (1, 3, 5)]
    assert all(isinstance(p, Placed) for p in placed)

    settled = await asyncio.gather(
        *(
            adapter.follow_settlement(account, p.contract_id)
            for p in placed
            if isinstance(p, Placed)
        )
    )

    ledger = {row["contract_id"]: row for row in await sim.ledger()}
    for result in settled:
        assert isinstance(result, Settlement)
        row = ledger[int(result.contract_id)]
        assert row["status"] == result.outcome  # the adapter reports what the broker decided
        assert Decimal(str(row["profit"])) == result.profit


async def test_settlement_survives_a_dropped_connection(
    sim: SimHandle, adapter: DerivAdapter
) -> None:
    account = await sim.account()
    await sim.faults(force_outcome="won")
    placed = await adapter.place(make_order(account, seconds=30))  # settles after 1 s
    assert isinstance(placed, Placed)
    follower = asyncio.create_task(adapter.follow_settlement(account, placed.contract_id))
    await asyncio.sleep(0.2)
    await sim.faults(drop_after_messages=1)
    # Any message now drops the socket; the follower reconnects and asks again.
    session = adapter.session(account)
    with contextlib.suppress(ConnectionLost):  # the drop is the point
        await session.request({"ping": 1}, reply_within=1.0)

    settled = await asyncio.wait_for(follower, timeout=5)

    assert isinstance(settled, Settlement) and settled.outcome == "won"
    assert session.connects == 2


async def test_the_account_stream_opens_shortly_before_the_first_contract_ends(
    sim: SimHandle,
) -> None:
    # The simulator ends this 15 s contract after 0.5 s (time-scaled); the adapter goes by
    # the nominal end, as it would at the real broker.
    adapter = DerivAdapter(sim.url, reply_timeout=3.0, watch_delay=0.1, watch_lead=5.0)
    try:
        account = await sim.account()
        placed = await adapter.place(make_order(account, seconds=15))
        assert isinstance(placed, Placed)
        results: list[object] = []
        now = time.time()
        # Nominally ending in 15 s: nothing is opened for it during the next 2 s ...
        far = adapter.watch_settlement(account, placed.contract_id, now + 15, results.append)
        await asyncio.sleep(2.0)
        assert results == []
        assert adapter.watches.following == 1
        far.cancel()
        # ... while one due to end 6 s from now is followed after about 1 s.
        adapter.watch_settlement(account, placed.contract_id, time.time() + 6, results.append)
        deadline = time.monotonic() + 5
        while not results and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        [settled] = results
        assert isinstance(settled, Settlement)
        assert settled.contract_id == placed.contract_id
    finally:
        await adapter.close()


async def test_the_account_stream_waits_for_the_burst_of_placements_to_end(
    sim: SimHandle,
) -> None:
    """A fan-out's streams open after its placements, not between its last ones; a burst
    that goes on and on keeps them closed until ready_before seconds before the first
    contract ends, and for burst_wait at least."""
    adapter = DerivAdapter(
        sim.url,
        reply_timeout=3.0,
        watch_delay=0.1,
        watch_lead=TIME_SCALED_WATCH_LEAD,
        watch_burst_wait=3.0,
    )
    try:
        account = await sim.account()
        results: list[object] = []
        placed = await adapter.place(make_order(account, seconds=15))
        assert isinstance(placed, Placed)
        with adapter.bursts.placing():  # the rest of the fan-out, still being placed
            adapter.watch_settlement(account, placed.contract_id, time.time() + 15, results.append)
            await asyncio.sleep(1.5)  # the simulator sold the contract after 0.5 s
            assert results == []
        ended = time.monotonic()
        await wait_for(lambda: bool(results), timeout=15, what="the settlement after the burst")
        # Opened once the burst ended, not at the sweep after the contract's end (15 s).
        assert 0.2 <= time.monotonic() - ended < 10.0
        [settled] = results
        assert isinstance(settled, Settlement) and settled.contract_id == placed.contract_id

        # Bursts that never end while we look. The simulator is time-scaled (it sells
        # after 0.5 s), so the nominal end only says how long the stream may wait.
        # Each stream opens no sooner than its bound; the upper bound is the contract's end,
        # where the sweep would find the contract without any stream.
        for ends_in, opens_after in ((6.0, 3.0), (11.0, 5.5)):
            other = await sim.account()
            again = await adapter.place(make_order(other, seconds=15))
            assert isinstance(again, Placed)
            results.clear()
            with adapter.bursts.placing():
                started = time.monotonic()
                adapter.watch_settlement(
                    other, again.contract_id, time.time() + ends_in, results.append
                )
                await wait_for(lambda: bool(results), timeout=30, what="the settlement")
                waited = time.monotonic() - started
                # 6 s: at least burst_wait (3 s); 11 s: until ready_before (5 s) before.
                assert opens_after <= waited < ends_in, (ends_in, waited)
    finally:
        await adapter.close()
