"""The subscribers' new limits as pure rules, and the exposure accounting as a model."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from apps.core.exposure import (
    Exposure,
    drawdown_percent,
    drawdown_reason,
    loss_limit_reason,
    needs_balance,
)
from apps.core.messages import Direction, ExecutionState
from apps.router.broker_rules import broker_stake
from apps.router.fanout import plan_fanout
from apps.router.risk import Balance, Refused, Sized, check_balance_rules
from tests.unit.router.test_risk_rules import NOW, record, signal


def reasons(plan_records: list, balances: dict | None = None, **signal_fields: object) -> dict:
    plan = plan_fanout(
        signal(**signal_fields), plan_records, balances or {}, NOW, expiry_tolerance_seconds=30
    )
    assert all(e.state is ExecutionState.REJECTED for e in plan.refusals)
    return {
        **{o.subscription_id: o.direction for o in plan.orders},
        **{e.subscription_id: e.reason for e in plan.refusals},
    }


def test_the_direction_filter_and_the_reverse_copy() -> None:
    records = [
        record("both"),
        record("calls", directions=("CALL",)),
        record("puts", directions=("PUT",)),
        record("reverse", reverse=True),
        record("reverse-puts", reverse=True, directions=("PUT",)),
    ]
    assert reasons(records, direction=Direction.CALL) == {
        "both": Direction.CALL,
        "calls": Direction.CALL,
        "puts": "CALL signals are not copied: this subscription copies PUT only",
        "reverse": Direction.PUT,
        # The filter reads the signal's direction; the reverse copy then places its opposite.
        "reverse-puts": "CALL signals are not copied: this subscription copies PUT only",
    }
    assert reasons(records, direction=Direction.PUT)["reverse-puts"] == Direction.CALL


def test_the_balance_floor_stops_copying_below_it() -> None:
    floor = record("floor", balance_floor=Decimal("500"))
    assert check_balance_rules(floor, Balance(Decimal("500"))) is None
    assert check_balance_rules(floor, Balance(Decimal("499.99"))) == Refused(
        "balance 499.99 is below your floor of 500.00: copying stops until it is back above"
    )
    assert check_balance_rules(floor, None) == Refused(
        "broker balance unknown: verify the broker account"
    )
    assert check_balance_rules(record("none"), None) is None


def test_the_maximum_drawdown_is_measured_from_the_peak() -> None:
    limited = record("dd", max_drawdown_percent=Decimal("30"))
    assert check_balance_rules(limited, Balance(Decimal("7000.01"), Decimal("10000"))) is None
    refused = check_balance_rules(limited, Balance(Decimal("7000"), Decimal("10000")))
    assert refused == Refused(
        "maximum drawdown reached: balance 7,000.00 is 30.0 % below its peak 10,000.00 "
        "(limit 30 %); resume the subscription to copy again"
    )
    # A balance above the recorded peak is the new peak.
    assert drawdown_percent(Decimal("12000"), Decimal("10000")) == 0
    assert drawdown_reason(Decimal("100"), None, Decimal("1")) is None
    assert needs_balance(limited) and not needs_balance(record("plain"))


def test_balance_rules_refuse_through_the_plan() -> None:
    records = [
        record("floor", balance_floor=Decimal("500")),
        record("dd", max_drawdown_percent=Decimal("10")),
    ]
    balances = {
        "ba-floor": Balance(Decimal("400"), Decimal("400")),
        "ba-dd": Balance(Decimal("850"), Decimal("1000")),
    }
    got = reasons(records, balances)
    assert str(got["floor"]).startswith("balance 400.00 is below your floor of 500.00")
    assert str(got["dd"]).startswith("maximum drawdown reached: balance 850.00 is 15.0 %")


def test_the_broker_minimum_refuses_or_rounds_up_for_those_who_opted_in() -> None:
    assert broker_stake("iqoption", Decimal("0.20"), "USD") == Refused(
        "stake 0.20 is below IQ Option's minimum of 1.00"
    )
    assert broker_stake("iqoption", Decimal("0.20"), "USD", round_up_to=Decimal("5")) == Sized(
        Decimal("1.00")
    )
    assert broker_stake("iqoption", Decimal("0.20"), "USD", round_up_to=Decimal("0.50")) == Refused(
        "stake 0.20 is below IQ Option's minimum of 1.00, and rounding it up would exceed "
        "your max stake of 0.50"
    )
    records = [
        record("up", broker_kind="iqoption", stake=Decimal("0.2"), round_up_to_min_stake=True),
        record("no", broker_kind="iqoption", stake=Decimal("0.2")),
    ]
    plan = plan_fanout(signal(), records, {}, NOW, expiry_tolerance_seconds=30)
    assert [(o.subscription_id, o.stake) for o in plan.orders] == [("up", Decimal("1.00"))]


def test_the_loss_limit_reason_says_what_is_at_risk() -> None:
    assert loss_limit_reason(2750, Decimal("30")) == (
        "daily loss limit reached: 27.50 of 30.00 at risk or lost today"
    )


# The accounting: any interleaving of reservations, redeliveries, releases, placements
# and settlements keeps settled losses + open stakes within the limit, and open equal to
# the sum of the reservations held.
steps = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "release", "placed", "won", "lost", "unknown"]),
        st.integers(0, 15),  # order
        st.integers(1, 1500),  # stake in minor units
    ),
    max_size=200,
)


@given(steps=steps, limit=st.integers(0, 5000))
def test_losses_and_open_stakes_never_exceed_the_limit(
    steps: list[tuple[str, int, int]], limit: int
) -> None:
    day = Exposure()
    stakes: dict[str, int] = {}
    for action, n, stake in steps:
        order = f"o{n}"
        held = day.orders.get(order)
        match action:
            case "reserve":
                taken, used = day.reserve(order, stake, limit)
                assert used <= limit
                if taken and held is None:
                    stakes[order] = stake
            case "release":
                day.release(order)
            case "placed" if order in stakes:
                day.placed(order, stakes[order])
            case "won" if order in stakes:
                day.settle(order, 0)
            case "lost" if order in stakes:
                day.settle(order, stakes[order])  # a lost contract loses its stake
            case _:
                pass  # unknown (and outcomes of orders never sent) change nothing
        assert day.open == sum(v for v in day.orders.values() if isinstance(v, int))
        assert day.open >= 0
        # Placing after a release re-takes a stake the limit already accounted for once;
        # reservations alone never overrun it.
        if not any(a == "placed" for a, _, _ in steps):
            assert day.lost + day.open <= limit


@given(stakes=st.lists(st.integers(1, 1000), max_size=100), limit=st.integers(0, 3000))
def test_reserving_is_idempotent_per_order(stakes: list[int], limit: int) -> None:
    day = Exposure()
    for k, stake in enumerate(stakes):
        first = day.reserve(f"o{k}", stake, limit)
        again = day.reserve(f"o{k}", stake, limit)
        assert again[0] == first[0] or not first[0]
    once = day.open
    for k, stake in enumerate(stakes):
        day.reserve(f"o{k}", stake, limit)
    assert day.open == once <= limit
