"""Who may act on an order whose marker exists: the pure rule behind every takeover."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from apps.brokers.base import Found, NotFound, Placed, Uncertain, Undecidable
from apps.brokers.markers import Marker, MarkerStatus
from apps.brokers.ownership import Unbooked, Verdict, after_reconciliation, decide
from apps.core.outage import backoff

GRACE = 2.0


def _marker(status: MarkerStatus, lease_until: float) -> Marker:
    return Marker(
        status=status,
        worker="w-1",
        claimed_at=0.0,
        updated_at=0.0,
        lease_until=lease_until,
        incarnation="inc-1",
    )


times = st.floats(min_value=0, max_value=1e6, allow_nan=False)
owners = st.sampled_from([True, False, None])


@given(
    st.sampled_from([s for s in MarkerStatus if s is not MarkerStatus.INFLIGHT]),
    times,
    times,
    owners,
)
def test_a_final_marker_is_only_ever_re_reported(
    status: MarkerStatus, lease_until: float, now: float, alive: bool | None
) -> None:
    marker = _marker(status, lease_until)
    assert decide(marker, now, owner_alive=alive, stale_grace=GRACE) is Verdict.REPORT


@given(times, times)
def test_an_order_whose_owner_process_is_gone_is_taken_over_at_once(
    lease_until: float, now: float
) -> None:
    marker = _marker(MarkerStatus.INFLIGHT, lease_until)
    assert decide(marker, now, owner_alive=False, stale_grace=GRACE) is Verdict.TAKE_OVER


@given(times, times, st.sampled_from([True, None]))
def test_a_live_or_unknown_owner_keeps_its_order_while_the_lease_runs(
    lease_until: float, now: float, alive: bool | None
) -> None:
    marker = _marker(MarkerStatus.INFLIGHT, lease_until)
    verdict = decide(marker, now, owner_alive=alive, stale_grace=GRACE)
    if now < lease_until + GRACE:
        assert verdict is Verdict.WAIT
    else:
        # A live process that stopped renewing this lease stopped working on the order.
        assert verdict is Verdict.TAKE_OVER


@given(st.integers(min_value=0, max_value=10_000))
def test_backoff_grows_to_its_cap_and_never_spins(attempt: int) -> None:
    pause = backoff(attempt)
    assert 0.25 <= pause <= 2.0
    assert backoff(attempt + 1) >= pause
    assert backoff(0) == 0.25 and backoff(10) == 2.0


_BOOKED = Placed(
    order_id="o-1",
    contract_id="c-1",
    buy_price=Decimal("10"),
    payout=Decimal("19.5"),
    purchase_time=0,
    broker_ref="t-1",
    reconciled=True,
)


@given(st.booleans())
def test_a_contract_the_broker_booked_is_the_placement_whoever_holds_the_order(
    still_ours: bool,
) -> None:
    found = Found(placed=_BOOKED)
    assert after_reconciliation(found, order_id="o-1", still_ours=still_ours) == _BOOKED


def test_only_the_worker_still_holding_an_unbooked_order_places_it() -> None:
    assert after_reconciliation(NotFound(), order_id="o-1", still_ours=True) is Unbooked.PLACE
    assert after_reconciliation(NotFound(), order_id="o-1", still_ours=False) is Unbooked.LEAVE


@given(st.booleans())
def test_an_answer_the_broker_cannot_give_ends_unknown_never_in_a_buy(still_ours: bool) -> None:
    result = after_reconciliation(
        Undecidable(reason="two matching contracts"), order_id="o-1", still_ours=still_ours
    )
    assert result == Uncertain(order_id="o-1", message="two matching contracts")
