"""A buy is sent only if the broker's recent answers say it is booked before its
signal's valid_until (apps.brokers.orders)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from apps.brokers.orders import BookingDelay, too_late


def test_a_slow_answer_counts_at_once_and_is_forgotten_over_the_next() -> None:
    delay = BookingDelay()
    assert delay.seconds() == 0.0
    delay.observe(0.05)
    delay.observe(0.4)
    assert delay.seconds() == 0.4
    for _ in range(40):
        delay.observe(0.05)
    assert 0.05 <= delay.seconds() < 0.1


@given(st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), min_size=1, max_size=50))
def test_the_delay_is_never_below_the_last_answer(answers: list[float]) -> None:
    delay = BookingDelay()
    for seconds in answers:
        delay.observe(seconds)
        assert delay.seconds() >= seconds


def test_a_buy_that_would_be_booked_after_valid_until_is_too_late() -> None:
    assert not too_late(valid_until=10.0, now=9.0, booking_delay=0.5)
    assert too_late(valid_until=10.0, now=9.6, booking_delay=0.5)
    assert too_late(valid_until=10.0, now=10.0, booking_delay=0.0)
