"""The IQ Option adapter against the real simulator: placing, every refusal status, the
balance it trades, and its sessions (ssid reuse, re-login, refused credentials, login
limits)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.brokers.base import BrokerAccount, Placed, Rejected, TransientFailure
from apps.brokers.iqoption.adapter import IQOptionAdapter
from apps.brokers.iqoption.protocol import (
    CREDENTIALS_REFUSED,
    REJECTION_CODES,
    TWO_FACTOR_REQUIRED,
)
from tests.fixtures.iq_orders import (
    broker_account,
    iq_adapter,
    ledger_of,
    make_iq_order,
    soonest_turbo,
    ssid_of,
)
from tests.fixtures.iqoption_sim import IQOptionSim

__all__ = ["iq_adapter"]


async def test_an_order_is_one_option_traced_to_it_in_the_ledger(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    (account,) = await iqoption_sim.create_accounts(1, balance="100")
    order = make_iq_order(broker_account(account), stake="2.50", direction="PUT")

    outcome = await iq_adapter.place(order)

    assert isinstance(outcome, Placed), outcome
    assert outcome.buy_price == Decimal("2.50")
    assert outcome.payout > outcome.buy_price
    (row,) = await iqoption_sim.ledger()
    assert row["request_id"] == row["order_id"] == order.order_id
    assert row["option_id"] == int(outcome.contract_id)
    assert row["balance_id"] == account.practice_balance_id
    assert (row["active_id"], row["direction"], row["expired"]) == (1, "put", order.expiry_at)
    assert Decimal(str(row["price"])) == Decimal("2.50")
    practice, real = await iqoption_sim.balances(account.user_id)
    assert practice == Decimal("97.50") and real == Decimal("100")
    # The same order again reports the same option and never buys twice.
    assert await iq_adapter.place(order) == outcome
    assert len(await iqoption_sim.ledger()) == 1


async def test_the_real_balance_is_traded_only_when_chosen(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    real = make_iq_order(broker_account(account, balance_type="real"))
    default = make_iq_order(BrokerAccount(login=account.email, password=account.password))

    assert isinstance(await iq_adapter.place(real), Placed)
    assert isinstance(await iq_adapter.place(default), Placed)

    ledger = await iqoption_sim.ledger()
    assert ledger_of(ledger, real)[0]["balance_id"] == account.real_balance_id
    assert ledger_of(ledger, default)[0]["balance_id"] == account.practice_balance_id


@pytest.mark.parametrize("status", sorted(REJECTION_CODES))
async def test_every_refusal_status_rejects_the_order_and_buys_nothing(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter, status: int
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    order = make_iq_order(broker_account(account))
    assert await iq_adapter.connect(order.account) is None
    await iqoption_sim.set_faults(error_code=str(status), error_count=1)

    outcome = await iq_adapter.place(order)

    assert isinstance(outcome, Rejected), outcome
    assert outcome.code == REJECTION_CODES[status]
    assert outcome.message  # the broker's own words reach the subscriber
    assert not outcome.account_refused
    assert await iqoption_sim.ledger() == []


async def test_the_brokers_own_refusals_reach_the_subscriber(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    (account,) = await iqoption_sim.create_accounts(1, balance="5")
    linked = broker_account(account)

    poor = await iq_adapter.place(make_iq_order(linked, stake="6"))
    tiny = await iq_adapter.place(make_iq_order(linked, stake="0.50"))
    off_grid = await iq_adapter.place(make_iq_order(linked, expiry_at=soonest_turbo() + 7))
    await iqoption_sim.set_faults(suspended_actives=[1])
    suspended = await iq_adapter.place(make_iq_order(linked))
    await iqoption_sim.set_faults(suspended_actives=[], market_closed=True)
    closed = await iq_adapter.place(make_iq_order(linked))

    codes = [
        o.code if isinstance(o, Rejected) else o for o in (poor, tiny, off_grid, suspended, closed)
    ]
    assert codes == [
        "InsufficientBalance",
        "InvalidStake",
        "InvalidExpiry",
        "ActiveSuspended",
        "MarketIsClosed",
    ]
    assert await iqoption_sim.ledger() == []


async def test_orders_iq_option_cannot_take_are_rejected_before_the_broker(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    linked = broker_account(account)

    no_expiry = await iq_adapter.place(make_iq_order(linked, expiry_at=None))
    unlisted = await iq_adapter.place(make_iq_order(linked, asset="R_100"))

    assert isinstance(no_expiry, Rejected) and no_expiry.code == "UnsupportedExpiry"
    assert "expiry" in no_expiry.message
    assert isinstance(unlisted, Rejected) and unlisted.code == "UnsupportedAsset"
    assert await iqoption_sim.ledger() == []
    assert (await iqoption_sim.stats())["logins"] == 0


async def test_the_ssid_is_reused_across_reconnects_and_renewed_once_revoked(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    linked = broker_account(account)
    session = iq_adapter.session(linked)

    assert isinstance(await iq_adapter.place(make_iq_order(linked)), Placed)
    await session.abort()  # a dropped socket: reconnects with the cached ssid
    assert isinstance(await iq_adapter.place(make_iq_order(linked)), Placed)
    assert (session.logins, session.connects) == (1, 2)

    await iqoption_sim.revoke(account.user_id)
    await session.abort()
    assert isinstance(await iq_adapter.place(make_iq_order(linked)), Placed)

    assert session.logins == 2  # logged in again only when the ssid was refused
    assert (await iqoption_sim.stats())["logins"] == 2
    assert len(await iqoption_sim.ledger()) == 3


async def test_a_refused_password_rejects_with_account_refused(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    accounts = await iqoption_sim.create_accounts(2)
    wrong = make_iq_order(broker_account(accounts[0], password="not-it"))
    changed = broker_account(accounts[1])
    assert isinstance(await iq_adapter.place(make_iq_order(changed)), Placed)
    # The subscriber changed the password at the broker: its sockets close, ssids die.
    await iqoption_sim.change_password(accounts[1].user_id, "new-password")

    outcomes = [await iq_adapter.place(wrong), await iq_adapter.place(make_iq_order(changed))]

    for outcome in outcomes:
        assert isinstance(outcome, Rejected), outcome
        assert outcome.code == CREDENTIALS_REFUSED and outcome.account_refused
        assert "not-it" not in outcome.message and "new-password" not in outcome.message
    assert len(await iqoption_sim.ledger()) == 1


async def test_ssid_only_accounts_work_until_the_ssid_is_refused(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    linked = BrokerAccount(token=await ssid_of(iqoption_sim, account), login=account.email)

    assert isinstance(await iq_adapter.place(make_iq_order(linked)), Placed)
    await iqoption_sim.revoke(account.user_id)
    await iq_adapter.session(linked).abort()
    refused = await iq_adapter.place(make_iq_order(linked))

    assert isinstance(refused, Rejected), refused
    assert refused.code == CREDENTIALS_REFUSED and refused.account_refused
    assert len(await iqoption_sim.ledger()) == 1


async def test_a_two_factor_account_needs_relinking(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    (account,) = await iqoption_sim.create_accounts(1, two_factor=True)

    outcome = await iq_adapter.place(make_iq_order(broker_account(account)))

    assert isinstance(outcome, Rejected), outcome
    assert outcome.code == TWO_FACTOR_REQUIRED and outcome.account_refused
    assert await iqoption_sim.ledger() == []


async def test_a_login_limit_pauses_the_accounts_logins_for_the_brokers_ttl(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    linked = broker_account(account)
    session = iq_adapter.session(linked)
    await iqoption_sim.set_faults(login_limit=1)
    assert isinstance(await iq_adapter.place(make_iq_order(linked)), Placed)
    await iqoption_sim.revoke(account.user_id)
    await session.abort()

    limited = await iq_adapter.place(make_iq_order(linked))
    again = await iq_adapter.place(make_iq_order(linked))

    for outcome in (limited, again):
        assert isinstance(outcome, TransientFailure), outcome
        assert outcome.retry_after > 1  # the broker's ttl, not an immediate retry
    # The second order waited out the limit without asking the login again.
    assert session.logins == 2
    assert len(await iqoption_sim.ledger()) == 1
