"""How a worker cuts a signal's orders into broker batches (pure, no servers)."""

from __future__ import annotations

import math
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from apps.brokers.orders import broker_chunks
from apps.core.messages import Order
from tests.fixtures.factories import make_order


def _order(i: int, account: str, stake: str) -> Order:
    return make_order(
        subscription_id=f"sub{i}",
        account=account,
        user_id=f"user{i}",
        stake=stake,
        created_at=0.0,
        valid_for=10.0,
    )


orders_strategy = st.lists(
    st.tuples(st.integers(0, 30), st.sampled_from(["1", "2", "2.50"])), max_size=300
).map(lambda rows: [_order(i, f"acc{a}", stake) for i, (a, stake) in enumerate(rows)])


@given(orders_strategy, st.integers(1, 50))
def test_every_order_lands_in_exactly_one_batchable_chunk(orders: list[Order], size: int) -> None:
    chunks = broker_chunks(orders, size)

    assert sorted(o.order_id for c in chunks for o in c) == sorted(o.order_id for o in orders)
    for chunk in chunks:
        assert 1 <= len(chunk) <= size
        assert len({o.broker_account_id for o in chunk}) == len(chunk)  # no account twice
        assert len({(o.stake, o.currency) for o in chunk}) == 1  # one set of terms


@given(orders_strategy, st.integers(1, 50))
def test_chunks_are_as_few_as_the_accounts_allow(orders: list[Order], size: int) -> None:
    """Per set of terms: as many chunks as the orders need at ``size`` each, or as the
    busiest account needs (one of its orders per chunk), whichever is more."""
    chunks = broker_chunks(orders, size)

    by_terms = Counter((o.stake, o.currency) for o in orders)
    expected = 0
    for terms, count in by_terms.items():
        busiest = Counter(
            o.broker_account_id for o in orders if (o.stake, o.currency) == terms
        ).most_common(1)[0][1]
        expected += max(math.ceil(count / size), busiest)
    assert len(chunks) == expected


def test_a_fan_out_over_many_accounts_fills_every_chunk() -> None:
    orders = [_order(i, f"acc{i % 500}", "1") for i in range(10_000)]

    chunks = broker_chunks(orders, 40)

    assert len(chunks) == 250
    assert {len(c) for c in chunks} == {40}
