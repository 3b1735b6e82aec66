"""The adapter against the real simulator: placing, every documented error, faults."""

from __future__ import annotations

import asyncio
import time

import pytest

from apps.brokers.base import Placed, Rejected, TransientFailure, place_until_valid
from apps.brokers.deriv.adapter import DerivAdapter
from apps.brokers.deriv.protocol import DOCUMENTED_ERROR_CODES, ErrorClass, classify_error
from apps.brokers.deriv.simulator import SimConfig
from tests.fixtures.deriv_sim import SimHandle, make_order
from tests.fixtures.waiting import wait_for


async def test_order_is_placed_once_and_traceable_in_the_ledger(
    sim: SimHandle, adapter: DerivAdapter
) -> None:
    account = await sim.account(balance="100")
    order = make_order(account, stake="2.50")

    outcome = await adapter.place(order)

    assert isinstance(outcome, Placed)
    assert outcome.buy_price == order.stake
    ledger = await sim.ledger()
    assert len(ledger) == 1
    assert ledger[0]["passthrough"]["order_id"] == order.order_id
    assert ledger[0]["passthrough"]["signal_id"] == order.signal_id
    assert ledger[0]["loginid"] == account.login
    assert ledger[0]["contract_id"] == int(outcome.contract_id)
    assert await sim.balance(account.login) == 100 - order.stake
    # The buy reply's balance and the contract's end instant come with the placement.
    assert outcome.balance_after == 100 - order.stake
    assert outcome.expiry_at == ledger[0]["date_expiry"]
    # Placing the same order again reports the same contract and never buys twice.
    assert await adapter.place(order) == outcome
    assert len(await sim.ledger()) == 1


@pytest.mark.parametrize("code", DOCUMENTED_ERROR_CODES)
async def test_every_documented_error_is_classified(
    sim: SimHandle, adapter: DerivAdapter, code: str
) -> None:
    account = await sim.account()
    order = make_order(account)
    assert await adapter.connect(account) is None
    await sim.faults(error_code=code, error_count=1)

    outcome = await place_until_valid(adapter, order)

    ledger = await sim.ledger()
    if classify_error(code) is ErrorClass.PERMANENT:
        assert isinstance(outcome, Rejected)
        assert outcome.code == code
        assert outcome.message  # the broker's own words reach the subscriber
        assert ledger == []
    else:  # retried within validity, bought exactly once
        assert isinstance(outcome, Placed), outcome
        assert [c["passthrough"]["order_id"] for c in ledger] == [order.order_id]


async def test_invalid_token_is_rejected(sim: SimHandle, adapter: DerivAdapter) -> None:
    account = await sim.account()
    forged = make_order(account.__class__(token="not-a-real-token", currency="USD"))
    outcome = await adapter.place(forged)
    assert isinstance(outcome, Rejected)
    assert outcome.code == "InvalidToken"
    assert outcome.message == "The token is invalid."
    assert outcome.account_refused  # the account needs re-linking, not only this order


async def test_a_token_revoked_mid_session_refuses_the_account_alone(
    sim: SimHandle, adapter: DerivAdapter
) -> None:
    kept, revoked = await sim.account(), await sim.account()
    for account in (kept, revoked):
        assert isinstance(await adapter.place(make_order(account)), Placed)
    await sim.revoke(revoked)
    # The simulator closes the revoked token's socket; a buy sent before the adapter saw
    # the close would be in doubt (reconciling needs a login the token no longer has).
    session = adapter.session(revoked)
    await wait_for(lambda: not session.is_open, what="the revoked token's socket closed")

    alone = await place_until_valid(adapter, make_order(revoked))
    # In one multi-account buy led by the account that still works.
    batch = await adapter.place_many([make_order(kept), make_order(revoked)])

    assert isinstance(alone, Rejected) and alone.account_refused, alone
    assert isinstance(batch[0], Placed), batch
    assert isinstance(batch[1], Rejected) and batch[1].account_refused, batch
    assert len(await sim.ledger()) == 3


async def test_broker_rules_reject_with_the_brokers_reason(
    sim: SimHandle, adapter: DerivAdapter
) -> None:
    poor = await sim.account(balance="0.50")
    rich = await sim.account()

    too_poor = await adapter.place(make_order(poor, stake="1.00"))
    too_small = await adapter.place(make_order(rich, stake="0.20"))
    await sim.faults(market_closed=True)
    closed = await adapter.place(make_order(rich))

    assert isinstance(too_poor, Rejected) and too_poor.code == "InsufficientBalance"
    assert isinstance(too_small, Rejected) and too_small.code == "ContractBuyValidationError"
    assert "0.35" in too_small.message
    assert isinstance(closed, Rejected) and closed.code == "MarketIsClosed"
    assert not any(r.account_refused for r in (too_poor, too_small, closed))  # orders, not accounts
    assert await sim.ledger() == []


@pytest.fixture
def sim_config() -> SimConfig:
    # BOOM500 is a canonical asset, but this simulator does not offer it.
    config = SimConfig(time_scale=30.0)
    del config.symbols["BOOM500"]
    return config


async def test_asset_not_offered_and_unmappable_expiry(
    sim: SimHandle, adapter: DerivAdapter
) -> None:
    account = await sim.account()
    not_offered = await adapter.place(make_order(account, asset="BOOM500"))
    unknown = await adapter.place(make_order(account, asset="DOGEUSD"))
    too_short = await adapter.place(make_order(account, seconds=5))
    forex_ticks = await adapter.place(make_order(account, asset="EURUSD", ticks=5))

    assert isinstance(not_offered, Rejected) and not_offered.code == "OfferingsValidationError"
    assert isinstance(unknown, Rejected) and unknown.code == "UnsupportedAsset"
    assert isinstance(too_short, Rejected) and too_short.code == "UnsupportedExpiry"
    assert isinstance(forex_ticks, Rejected) and forex_ticks.code == "UnsupportedExpiry"


async def test_reconnects_after_a_dropped_connection(sim: SimHandle, adapter: DerivAdapter) -> None:
    account = await sim.account()
    assert isinstance(await adapter.place(make_order(account)), Placed)
    session = adapter.session(account)
    assert session.connects == 1

    await sim.faults(drop_after_messages=1)  # the next message kills the socket
    dropped = await adapter.place(make_order(account))
    assert isinstance(dropped, TransientFailure)  # not bought, safe to retry
    for _ in range(50):  # the session notices the close on its own
        if not session.is_open:
            break
        await asyncio.sleep(0.01)

    order = make_order(account)
    outcome = await place_until_valid(adapter, order)

    assert isinstance(outcome, Placed)
    assert session.connects == 2  # reconnected and re-authorised
    assert len(await sim.ledger()) == 2


async def test_connection_dropped_mid_buy_is_reconciled_without_a_second_buy(
    sim: SimHandle, adapter: DerivAdapter
) -> None:
    account = await sim.account()
    earlier = make_order(account)
    assert isinstance(await adapter.place(earlier), Placed)  # same terms, already claimed
    await sim.faults(drop_mid_buy=1)  # booked, then the reply is lost with the socket
    order = make_order(account)

    outcome = await place_until_valid(adapter, order)

    assert isinstance(outcome, Placed)
    assert outcome.reconciled
    ledger = await sim.ledger()
    mine = [c for c in ledger if c["passthrough"]["order_id"] == order.order_id]
    assert len(mine) == 1
    assert mine[0]["contract_id"] == int(outcome.contract_id)
    assert len(ledger) == 2
    assert (await sim.stats())["drops"] == 1


async def test_rate_limit_is_hit_and_respected(sim: SimHandle, adapter: DerivAdapter) -> None:
    account = await sim.account()
    await adapter.connect(account)
    # 4 calls a second per account (authorize already spent one of this second).
    (await sim.admin.put("/admin/limits", json={"general": [[4, 1.0]]})).raise_for_status()
    orders = [make_order(account, valid_for=8.0) for _ in range(10)]

    started = time.monotonic()
    outcomes = await asyncio.gather(*(place_until_valid(adapter, o) for o in orders))
    elapsed = time.monotonic() - started

    assert all(isinstance(o, Placed) for o in outcomes), outcomes
    ledger = await sim.ledger()
    assert sorted(c["passthrough"]["order_id"] for c in ledger) == sorted(
        o.order_id for o in orders
    )
    limited = (await sim.stats())["rate_limited"]
    assert limited >= 1  # the limit was hit...
    # ...and respected: the account paused (10 buys at 4/s need over a second) and the
    # retries stayed few instead of hammering the broker until validity ran out.
    assert elapsed >= 1.0
    assert limited <= 2 * len(orders)
