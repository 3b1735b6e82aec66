"""Placed IQ Option options are followed to settlement: from the account's pushes, and by
polling ``api_game_betinfo`` when no push comes."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from apps.brokers.base import (
    Placed,
    Settlement,
    SettlementResult,
    SettlementUnavailable,
)
from apps.brokers.iqoption.adapter import IQOptionAdapter
from tests.fixtures.iq_orders import broker_account, iq_adapter, make_iq_order
from tests.fixtures.iqoption_sim import IQOptionSim
from tests.fixtures.waiting import wait_for

__all__ = ["iq_adapter"]


class Settled:
    """Collects what ``watch_settlement`` calls back with, by contract id."""

    def __init__(self) -> None:
        self.results: dict[str, list[SettlementResult]] = {}

    def __call__(self, result: SettlementResult) -> None:
        self.results.setdefault(result.contract_id, []).append(result)


@pytest.mark.parametrize(
    ("outcome", "sell_price", "profit", "reported"),
    [
        ("won", "18.50", "8.50", "won"),
        ("lost", "0", "-10", "lost"),
        # A refund: the copier's outcomes are won/lost, so it is "lost" with profit 0.
        ("equal", "10", "0", "lost"),
    ],
)
async def test_pushes_settle_every_option_of_the_account(
    iqoption_sim: IQOptionSim,
    iq_adapter: IQOptionAdapter,
    outcome: str,
    sell_price: str,
    profit: str,
    reported: str,
) -> None:
    (account,) = await iqoption_sim.create_accounts(1, balance="100")
    linked = broker_account(account)
    await iqoption_sim.set_faults(force_outcome=outcome)
    placed = [await iq_adapter.place(make_iq_order(linked, stake="10")) for _ in range(3)]
    assert all(isinstance(p, Placed) for p in placed)
    settled = Settled()
    # Due long after the simulator settles them: only a push can settle them in time.
    later = time.time() + 3600
    for p in placed:
        assert isinstance(p, Placed)
        iq_adapter.watch_settlement(linked, p.contract_id, later, settled)

    await wait_for(lambda: len(settled.results) == 3, what="three settlements")

    ledger = {str(row["option_id"]): row for row in await iqoption_sim.ledger()}
    for contract_id, results in settled.results.items():
        (result,) = results  # called exactly once
        assert isinstance(result, Settlement)
        assert result.outcome == reported
        assert result.buy_price == Decimal("10")
        assert result.sell_price == Decimal(sell_price)
        assert result.profit == Decimal(profit)
        assert Decimal(str(ledger[contract_id]["profit"])) == result.profit
        assert ledger[contract_id]["status"] == outcome
        # The open and close values are the broker's spots.
        assert result.entry_spot == Decimal(str(ledger[contract_id]["entry_spot"]))
        assert result.exit_spot == Decimal(str(ledger[contract_id]["exit_spot"]))
        assert result.expiry_at == ledger[contract_id]["expired"]
    assert iq_adapter.watches.lookups == 0
    assert iq_adapter.watches.pushed == 3


async def test_options_that_closed_unheard_are_polled_after_their_expiry(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    linked = broker_account(account)
    await iqoption_sim.set_faults(force_outcome="won")
    placed = await iq_adapter.place(make_iq_order(linked, stake="10"))
    assert isinstance(placed, Placed)
    # Settled before anyone watched it (a worker adopting another's settlements): its
    # push went nowhere.
    await wait_for(lambda: _status(iqoption_sim, placed.contract_id), what="the option to close")
    settled = Settled()

    iq_adapter.watch_settlement(linked, placed.contract_id, time.time() + 0.5, settled)

    await wait_for(lambda: settled.results, what="the settlement")
    (result,) = settled.results[placed.contract_id]
    assert isinstance(result, Settlement)
    assert result.outcome == "won" and result.profit == placed.payout - placed.buy_price
    assert iq_adapter.watches.lookups >= 1 and iq_adapter.watches.pushed == 0


async def _status(sim: IQOptionSim, contract_id: str) -> bool:
    rows = [r for r in await sim.ledger() if str(r["option_id"]) == contract_id]
    return bool(rows) and rows[0]["status"] != "open"


async def test_follow_settlement_survives_a_dropped_socket(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    linked = broker_account(account)
    await iqoption_sim.set_faults(force_outcome="lost")
    placed = await iq_adapter.place(make_iq_order(linked, stake="3"))
    assert isinstance(placed, Placed)
    follower = asyncio.create_task(iq_adapter.follow_settlement(linked, placed.contract_id))
    await iq_adapter.session(linked).abort()

    result = await asyncio.wait_for(follower, 60)

    assert isinstance(result, Settlement)
    assert result.outcome == "lost" and result.profit == Decimal("-3")


async def test_an_option_the_broker_does_not_know_is_unavailable(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    settled = Settled()

    iq_adapter.watch_settlement(broker_account(account), "987654321", time.time(), settled)

    await wait_for(lambda: settled.results, what="the answer")
    (result,) = settled.results["987654321"]
    assert isinstance(result, SettlementUnavailable)


async def test_refused_credentials_end_the_watch_as_unavailable(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    linked = broker_account(account)
    placed = await iq_adapter.place(make_iq_order(linked))
    assert isinstance(placed, Placed)
    await iqoption_sim.change_password(account.user_id, "changed")
    settled = Settled()

    iq_adapter.watch_settlement(linked, placed.contract_id, time.time() + 3600, settled)

    await wait_for(lambda: settled.results, what="the answer")
    (result,) = settled.results[placed.contract_id]
    assert isinstance(result, SettlementUnavailable)
    assert "changed" not in result.message


async def test_both_balances_of_one_login_are_settled_from_pushes(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    practice = broker_account(account)
    real = broker_account(account, balance_type="real")
    placed = [await iq_adapter.place(make_iq_order(a)) for a in (practice, real)]
    settled = Settled()
    later = time.time() + 3600

    for linked, p in zip((practice, real), placed, strict=True):
        assert isinstance(p, Placed), p
        iq_adapter.watch_settlement(linked, p.contract_id, later, settled)

    await wait_for(lambda: len(settled.results) == 2, what="both settlements")
    assert all(isinstance(r, Settlement) for [r] in settled.results.values())
    assert iq_adapter.watches.lookups == 0  # one socket, a subscription per balance
    assert iq_adapter.session(practice).connects == 1
