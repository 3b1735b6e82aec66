"""Each broker's rules for a signal (apps.router.broker_rules) and their use in the
router's fan-out: asset, expiry and stake limits per broker kind."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from apps.core.assets import CANONICAL_ASSETS
from apps.core.brokers import deriv, iqoption
from apps.core.messages import Direction, Signal
from apps.core.routing import BrokerKind, RoutingRecord
from apps.router.broker_rules import BrokerTerms, broker_stake, broker_terms
from apps.router.fanout import plan_fanout
from apps.router.risk import Balance, Refused, Sized

HOUR = 1_800_000_000 - 1_800_000_000 % 3600  # a whole hour: on every expiry grid


def signal(**overrides: object) -> Signal:
    fields: dict[str, object] = {
        "signal_id": "sig1",
        "channel_id": "c1",
        "sender_id": "p1",
        "asset": "EURUSD",
        "direction": Direction.CALL,
        "expiry_seconds": 60,
        "stake": Decimal("10"),
        "created_at": float(HOUR),
        "valid_until": HOUR + 5.0,
    }
    fields.update(overrides)
    return Signal(**fields)  # type: ignore[arg-type]


def record(sub: str, **overrides: object) -> RoutingRecord:
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
        "max_stake": Decimal("1000000"),
        "expires_at": HOUR + 3600,
    }
    fields.update(overrides)
    return RoutingRecord(**fields)  # type: ignore[arg-type]


# --- assets ---------------------------------------------------------------------------


def test_a_forex_signal_suits_both_brokers() -> None:
    assert broker_terms("deriv", signal(), 30) == BrokerTerms()
    assert broker_terms("iqoption", signal(), 30) == BrokerTerms(expiry_at=HOUR + 60)


def test_an_asset_a_broker_does_not_offer_is_refused_for_that_broker_only() -> None:
    synthetic = signal(asset="R_100")
    assert broker_terms("deriv", synthetic, 30) == BrokerTerms()
    assert broker_terms("iqoption", synthetic, 30) == Refused("IQ Option does not offer R_100")
    unknown = signal(asset="DOGEUSD")
    assert broker_terms("deriv", unknown, 30) == Refused("Deriv does not offer DOGEUSD")
    assert broker_terms("iqoption", unknown, 30) == Refused("IQ Option does not offer DOGEUSD")


# --- expiries -------------------------------------------------------------------------


def test_deriv_takes_its_duration_ranges_exactly() -> None:
    assert broker_terms("deriv", signal(asset="R_100", expiry_seconds=15), 30) == BrokerTerms()
    assert broker_terms("deriv", signal(expiry_seconds=45), 30) == Refused(
        "45s on EURUSD: Deriv allows 60-86400 seconds"
    )


def test_iq_option_gets_the_nearest_legal_expiry_within_the_tolerance() -> None:
    late = signal(created_at=HOUR + 20.0, expiry_seconds=75)  # wants HOUR + 95
    assert broker_terms("iqoption", late, 30) == BrokerTerms(expiry_at=HOUR + 120)
    assert broker_terms("iqoption", late, 10) == Refused(
        "IQ Option has no expiry within 10s of 75s: the nearest it sells ends 100s after the signal"
    )


def test_the_signals_own_tolerance_overrides_the_routers() -> None:
    wants_90 = signal(expiry_seconds=90)  # HOUR + 60 and HOUR + 120 are 30 s off
    assert broker_terms("iqoption", wants_90, 30) == BrokerTerms(expiry_at=HOUR + 60)
    strict = signal(expiry_seconds=90, expiry_tolerance_seconds=0)
    assert isinstance(broker_terms("iqoption", strict, 30), Refused)
    lenient = signal(expiry_seconds=90, expiry_tolerance_seconds=30)
    assert broker_terms("iqoption", lenient, 0) == BrokerTerms(expiry_at=HOUR + 60)


# --- stakes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "stake", "currency", "outcome"),
    [
        ("iqoption", "0.50", "USD", Refused("stake 0.50 is below IQ Option's minimum of 1.00")),
        ("iqoption", "1.00", "USD", Sized(Decimal("1.00"))),
        ("iqoption", "20000.00", "EUR", Sized(Decimal("20000.00"))),
        ("iqoption", "25000.50", "USD", Sized(Decimal("20000.00"))),  # trimmed, not refused
        ("deriv", "0.34", "USD", Refused("stake 0.34 is below Deriv's minimum of 0.35")),
        ("deriv", "0.35", "GBP", Sized(Decimal("0.35"))),
        ("deriv", "60000.00", "USD", Sized(Decimal("50000.00"))),
        ("deriv", "0.01", "BTC", Sized(Decimal("0.01"))),  # no known limits: Deriv decides
    ],
)
def test_each_brokers_stake_limits(
    kind: BrokerKind, stake: str, currency: str, outcome: Sized | Refused
) -> None:
    assert broker_stake(kind, Decimal(stake), currency) == outcome


# --- in the fan-out -------------------------------------------------------------------


def test_a_fan_out_decides_a_brokers_expiry_once_not_per_subscriber(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[float, int, int]] = []
    choose = iqoption.choose_expiry

    def counted(now: float, seconds: int, tolerance: int) -> object:
        calls.append((now, seconds, tolerance))
        return choose(now, seconds, tolerance)

    monkeypatch.setattr(iqoption, "choose_expiry", counted)
    records = [record(f"s{i:05}", broker_kind="iqoption") for i in range(10_000)]
    plan = plan_fanout(signal(), records, {}, float(HOUR), expiry_tolerance_seconds=30)
    assert len(plan.orders) == 10_000
    assert {o.expiry_at for o in plan.orders} == {HOUR + 60}
    assert calls == [(float(HOUR), 60, 30)]


def test_the_routers_tolerance_applies_to_signals_that_state_none() -> None:
    records = [record("iq", broker_kind="iqoption")]
    wants_90 = signal(expiry_seconds=90)
    strict = plan_fanout(wants_90, records, {}, float(HOUR), expiry_tolerance_seconds=29)
    assert [e.reason for e in strict.refusals] == [
        "IQ Option has no expiry within 29s of 90s: the nearest it sells ends 60s after the signal"
    ]
    lenient = plan_fanout(wants_90, records, {}, float(HOUR), expiry_tolerance_seconds=30)
    assert [o.expiry_at for o in lenient.orders] == [HOUR + 60]


# --- properties -----------------------------------------------------------------------

created = st.one_of(
    st.floats(min_value=1.7e9, max_value=1.9e9, allow_nan=False, allow_infinity=False),
    st.builds(
        lambda minute, offset: minute * 60 + offset,
        st.integers(min_value=28_000_000, max_value=31_000_000),
        st.sampled_from([0.0, 0.5, 29.0, 30.0, 31.0, 59.9]),
    ),
)
kinds: st.SearchStrategy[BrokerKind] = st.sampled_from(["deriv", "iqoption"])
subscriptions = st.lists(
    st.builds(
        lambda n, kind, mode, stake, max_stake, currency: record(
            f"s{n:04}",
            broker_kind=kind,
            stake_mode=mode,
            stake=stake,
            max_stake=max_stake,
            currency=currency,
        ),
        st.integers(0, 9999),
        kinds,
        st.sampled_from(["fixed", "multiplier", "percent"]),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2),
        st.sampled_from(["USD", "EUR", "BTC"]),
    ),
    min_size=1,
    max_size=40,
    unique_by=lambda r: r.subscription_id,
)


@given(
    records=subscriptions,
    asset=st.sampled_from([*sorted(CANONICAL_ASSETS), "DOGEUSD"]),
    # mostly within IQ Option's two hours of expiries, where its orders are
    expiry=st.sampled_from([60, 90, 300, 900, 3600]) | st.integers(15, 86_400),
    created_at=created,
    own_tolerance=st.none() | st.integers(0, 300),
    default_tolerance=st.integers(0, 300),
    signal_stake=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("50000"), places=2),
)
def test_orders_keep_each_brokers_rules(
    records: list[RoutingRecord],
    asset: str,
    expiry: int,
    created_at: float,
    own_tolerance: int | None,
    default_tolerance: int,
    signal_stake: Decimal,
) -> None:
    sig = signal(
        asset=asset,
        expiry_seconds=expiry,
        created_at=created_at,
        valid_until=created_at + 5,
        expiry_tolerance_seconds=own_tolerance,
        stake=signal_stake,
    )
    balances = {r.broker_account_id: Balance(Decimal("5000")) for r in records}
    plan = plan_fanout(
        sig, records, balances, created_at, expiry_tolerance_seconds=default_tolerance
    )
    tolerance = default_tolerance if own_tolerance is None else own_tolerance
    by_id = {r.subscription_id: r for r in records}
    assert len(plan.orders) + len(plan.refusals) == len(records)
    for order in plan.orders:
        mine = by_id[order.subscription_id]
        event(f"{order.broker_kind} order")
        assert Decimal("0") < order.stake <= mine.max_stake
        assert order.stake == order.stake.quantize(Decimal("0.01"))
        if order.broker_kind == "iqoption":
            assert asset in iqoption.ACTIVE_IDS
            assert order.expiry_at is not None
            legal = {e.at for e in iqoption.legal_expiries(created_at)}
            assert order.expiry_at in legal
            assert abs(order.expiry_at - (created_at + expiry)) <= tolerance
            assert iqoption.MIN_STAKE <= order.stake <= iqoption.MAX_STAKE
        else:
            assert order.expiry_at is None
            assert isinstance(deriv.deriv_symbol(order.asset), str)
            if order.currency in deriv.STAKE_LIMIT_CURRENCIES:
                assert deriv.MIN_STAKE <= order.stake <= deriv.MAX_STAKE


@given(kind=kinds, asset=st.sampled_from([*sorted(CANONICAL_ASSETS), "DOGEUSD"]))
def test_a_broker_refuses_exactly_the_assets_it_does_not_offer(
    kind: BrokerKind, asset: str
) -> None:
    offered = asset in iqoption.ACTIVE_IDS if kind == "iqoption" else asset in CANONICAL_ASSETS
    terms = broker_terms(kind, signal(asset=asset, expiry_seconds=3600), 30)
    name = "IQ Option" if kind == "iqoption" else "Deriv"
    assert (terms == Refused(f"{name} does not offer {asset}")) is not offered


@given(
    kind=kinds,
    stake=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2),
)
def test_a_stake_is_refused_only_below_the_minimum_and_trimmed_above_the_maximum(
    kind: BrokerKind, stake: Decimal
) -> None:
    low, high = (
        (iqoption.MIN_STAKE, iqoption.MAX_STAKE)
        if kind == "iqoption"
        else (deriv.MIN_STAKE, deriv.MAX_STAKE)
    )
    match broker_stake(kind, stake, "USD"):
        case Sized(stake=within):
            assert stake >= low
            assert within == min(stake, high)
        case Refused(reason=reason):
            assert stake < low
            assert reason.startswith(f"stake {stake:.2f} is below")
