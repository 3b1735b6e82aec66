from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from apps.core.messages import Direction, ExecutionState, Signal
from apps.core.routing import RoutingRecord
from apps.router.fanout import group_orders, plan_fanout, shard_of
from apps.router.risk import Balance, Refused, Sized, size_stake

NOW = 1_800_000_000.0


def record(sub: str = "s1", **overrides: object) -> RoutingRecord:
    fields: dict[str, object] = {
        "subscription_id": sub,
        "channel_id": "c1",
        "subscriber_id": f"u-{sub}",
        "broker_kind": "deriv",
        "broker_account_id": f"ba-{sub}",
        "credentials_ref": f"ba-{sub}",
        "currency": "USD",
        "stake_mode": "fixed",
        "stake": Decimal("5"),
        "max_stake": Decimal("50"),
        "expires_at": int(NOW) + 3600,
    }
    fields.update(overrides)
    return RoutingRecord(**fields)  # type: ignore[arg-type]


def signal(**overrides: object) -> Signal:
    fields: dict[str, object] = {
        "signal_id": "sig1",
        "channel_id": "c1",
        "sender_id": "p1",
        "asset": "EURUSD",
        "direction": Direction.CALL,
        "expiry_seconds": 60,
        "stake": Decimal("10"),
        "created_at": NOW,
        "valid_until": NOW + 5,
    }
    fields.update(overrides)
    return Signal(**fields)  # type: ignore[arg-type]


def test_stake_modes() -> None:
    assert size_stake(record(), Decimal("10"), None) == Sized(Decimal("5.00"))
    multiplier = record(stake_mode="multiplier", stake=Decimal("2.5"))
    assert size_stake(multiplier, Decimal("10"), None) == Sized(Decimal("25.00"))
    percent = record(stake_mode="percent", stake=Decimal("1.5"))
    assert size_stake(percent, Decimal("10"), Decimal("1000")) == Sized(Decimal("15.00"))
    assert isinstance(size_stake(percent, Decimal("10"), None), Refused)


def test_the_max_stake_trims_instead_of_refusing() -> None:
    capped = record(stake_mode="multiplier", stake=Decimal("10"), max_stake=Decimal("20"))
    assert size_stake(capped, Decimal("10"), None) == Sized(Decimal("20.00"))


@given(
    mode=st.sampled_from(["fixed", "multiplier", "percent"]),
    stake=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000"), places=2),
    max_stake=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000"), places=2),
    signal_stake=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000"), places=2),
    balance=st.decimals(min_value=Decimal("0"), max_value=Decimal("1000000"), places=2),
)
def test_a_sized_stake_is_positive_whole_cents_and_never_above_the_cap(
    mode: str, stake: Decimal, max_stake: Decimal, signal_stake: Decimal, balance: Decimal
) -> None:
    result = size_stake(
        record(stake_mode=mode, stake=stake, max_stake=max_stake), signal_stake, balance
    )
    if isinstance(result, Sized):
        assert Decimal("0") < result.stake <= max_stake
        assert result.stake == result.stake.quantize(Decimal("0.01"))
    else:
        assert "not positive" in result.reason


def test_every_record_becomes_an_order_or_a_refusal_with_its_reason() -> None:
    records = [
        record("ok"),
        record("paused", paused=True),
        record("expired", expires_at=int(NOW) - 1),
        record("assets", assets=("GBPUSD",)),
        record("allowed", assets=("EURUSD", "GBPUSD")),
        record("nobalance", stake_mode="percent", stake=Decimal("1")),
        record("small", stake=Decimal("0.20")),
        record("iq", broker_kind="iqoption"),
        record("iqpaused", broker_kind="iqoption", paused=True),
        record("iqsmall", broker_kind="iqoption", stake=Decimal("0.50")),
    ]
    plan = plan_fanout(signal(), records, {}, NOW, expiry_tolerance_seconds=30)
    assert sorted(o.subscription_id for o in plan.orders) == ["allowed", "iq", "ok"]
    reasons = {e.subscription_id: e.reason for e in plan.refusals}
    assert reasons == {
        "paused": "subscription paused",
        "expired": "subscription expired",
        "assets": "asset EURUSD is not in the subscription's allow-list",
        "nobalance": "broker balance unknown: verify the broker account",
        "small": "stake 0.20 is below Deriv's minimum of 0.35",
        "iqpaused": "subscription paused",
        "iqsmall": "stake 0.50 is below IQ Option's minimum of 1.00",
    }
    assert all(e.state is ExecutionState.REJECTED for e in plan.refusals)
    assert {e.subscription_id: e.broker_kind for e in plan.refusals}["iqsmall"] == "iqoption"
    assert plan.orders[0].order_id == "sig1.ok"
    expiries = {o.subscription_id: o.expiry_at for o in plan.orders}
    assert expiries == {"ok": None, "allowed": None, "iq": int(NOW) + 60}


def test_a_stale_signal_routes_nothing() -> None:
    plan = plan_fanout(
        signal(valid_until=NOW - 0.1),
        [record("a"), record("b", broker_kind="iqoption")],
        {},
        NOW,
        expiry_tolerance_seconds=30,
    )
    assert plan.orders == []
    assert {e.state for e in plan.refusals} == {ExecutionState.EXPIRED}


def test_grouping_is_stable_and_single_orders_use_the_order_id() -> None:
    plan = plan_fanout(
        signal(), [record(f"s{i:03}") for i in range(7)], {}, NOW, expiry_tolerance_seconds=30
    )
    grouped = group_orders("sig1", plan.orders, 3, 0)
    assert [len(b.orders) for _, b in grouped] == [3, 3, 1]
    assert grouped == group_orders("sig1", list(reversed(plan.orders)), 3, 0)
    single = group_orders("sig1", plan.orders, 1, 0)
    assert [msg_id for msg_id, _ in single] == [o.order_id for o in plan.orders]


@given(st.lists(st.text(min_size=1, max_size=30), unique=True, max_size=200), st.integers(1, 9))
def test_shards_partition_the_subscriptions(ids: list[str], shards: int) -> None:
    owners = [[k for k in range(shards) if shard_of(i, shards) == k] for i in ids]
    assert all(len(o) == 1 for o in owners)


records_of_any_broker = st.lists(
    st.builds(
        lambda n, kind, mode, stake, paused, expired, assets: record(
            f"s{n:04}",
            broker_kind=kind,
            stake_mode=mode,
            stake=stake,
            paused=paused,
            expires_at=int(NOW) - 1 if expired else int(NOW) + 3600,
            assets=assets,
        ),
        st.integers(0, 9999),
        st.sampled_from(["deriv", "iqoption"]),
        st.sampled_from(["fixed", "multiplier", "percent"]),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2),
        st.booleans(),
        st.booleans(),
        st.sampled_from([(), ("EURUSD",), ("R_100",)]),
    ),
    max_size=60,
    unique_by=lambda r: r.subscription_id,
)


@given(
    records=records_of_any_broker,
    asset=st.sampled_from(["EURUSD", "R_100", "XAUUSD", "BOOM500"]),
    expiry=st.integers(min_value=15, max_value=86_400),
    stale=st.booleans(),
    balance=st.none() | st.decimals(min_value=Decimal("0"), max_value=Decimal("1000000"), places=2),
)
def test_every_record_of_any_broker_becomes_exactly_one_order_or_refusal(
    records: list[RoutingRecord], asset: str, expiry: int, stale: bool, balance: Decimal | None
) -> None:
    balances = {} if balance is None else {r.broker_account_id: Balance(balance) for r in records}
    sig = signal(asset=asset, expiry_seconds=expiry, valid_until=NOW - 1 if stale else NOW + 5)
    plan = plan_fanout(sig, records, balances, NOW, expiry_tolerance_seconds=30)
    ordered = [o.subscription_id for o in plan.orders]
    refused = [e.subscription_id for e in plan.refusals]
    assert sorted(ordered + refused) == sorted(r.subscription_id for r in records)
    by_id = {r.subscription_id: r for r in records}
    for order in plan.orders:
        assert order.broker_kind == by_id[order.subscription_id].broker_kind
        assert order.order_id == f"sig1.{order.subscription_id}"
    for execution in plan.refusals:
        assert execution.broker_kind == by_id[execution.subscription_id].broker_kind
        assert execution.reason
    grouped = group_orders("sig1", plan.orders, 7, 0)
    assert all(o.broker_kind == batch.broker_kind for _, batch in grouped for o in batch.orders)
    assert sorted(o.order_id for _, b in grouped for o in b.orders) == sorted(
        o.order_id for o in plan.orders
    )
