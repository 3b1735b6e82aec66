"""The notifier's pure rules: which event an execution is, how preferences resolve, the
rate limit and digest decisions, and ids that repeat exactly."""

from __future__ import annotations

from decimal import Decimal

from apps.core.messages import Direction, Execution, ExecutionState, Outcome
from apps.core.notifications import DeliveryChannel, DigestChoice, EventKind, Preferences
from apps.notifier.rules import (
    Digest,
    Immediate,
    channel_on,
    channels_for,
    delivery_for,
    digest_id,
    digest_text,
    event_of,
    notification_id,
)

ALL = frozenset(DeliveryChannel)


def execution(state: ExecutionState, **kw: object) -> Execution:
    base: dict[str, object] = {
        "order_id": "s1.sub1",
        "signal_id": "s1",
        "channel_id": "c1",
        "subscription_id": "sub1",
        "user_id": "u1",
        "state": state,
        "at": 1_700_000_000.0,
        "asset": "R_100",
        "direction": Direction.CALL,
        "stake": Decimal("2"),
        "currency": "USD",
    }
    return Execution(**(base | kw))  # type: ignore[arg-type]


def test_each_state_is_its_event_and_others_are_none() -> None:
    placed = event_of(execution(ExecutionState.PLACED))
    assert placed is not None and placed.kind is EventKind.PLACED
    assert "R_100 CALL" in placed.title and "2.00 USD" in placed.body
    rejected = event_of(execution(ExecutionState.REJECTED, reason="stake below the minimum"))
    assert rejected is not None and rejected.kind is EventKind.REJECTED
    assert "stake below the minimum" in rejected.body
    won = event_of(execution(ExecutionState.SETTLED, outcome=Outcome.WON, profit=Decimal("1.9")))
    assert won is not None and won.kind is EventKind.WON and "+1.90 USD" in won.title
    lost = event_of(execution(ExecutionState.SETTLED, outcome=Outcome.LOST, profit=Decimal("-2")))
    assert lost is not None and lost.kind is EventKind.LOST and "-2.00 USD" in lost.title
    for state in (ExecutionState.EXPIRED, ExecutionState.FAILED, ExecutionState.UNKNOWN):
        assert event_of(execution(state)) is None


def test_a_pause_is_told_once_per_subscription_reason_and_day() -> None:
    reasons = (
        "maximum drawdown reached (20%)",
        "broker account needs re-linking: InvalidToken",
        "payment failed: card declined",
    )
    for reason in reasons:
        first = event_of(execution(ExecutionState.REJECTED, reason=reason))
        again = event_of(execution(ExecutionState.REJECTED, reason=reason, order_id="s2.sub1"))
        next_day = event_of(execution(ExecutionState.REJECTED, reason=reason, at=1_700_090_000.0))
        assert first is not None and again is not None and next_day is not None
        assert first.kind is EventKind.PAUSED and reason in first.body
        assert first.key == again.key != next_day.key
    chosen = event_of(execution(ExecutionState.REJECTED, reason="subscription paused"))
    assert chosen is not None and chosen.kind is EventKind.REJECTED


def test_preferences_resolve_override_then_default_then_builtin() -> None:
    fresh = Preferences(user_id="u1", email="a@example.com", telegram_chat_id=7)
    assert channel_on(fresh, EventKind.WON, DeliveryChannel.IN_APP)
    assert not channel_on(fresh, EventKind.WON, DeliveryChannel.EMAIL)
    assert not channel_on(fresh, EventKind.WON, DeliveryChannel.TELEGRAM)
    chosen = Preferences(
        user_id="u1",
        defaults={"email": True, "in_app": True},
        overrides={"placed": {"email": False}, "lost": {"telegram": True}},
        email="a@example.com",
        telegram_chat_id=7,
    )
    assert channel_on(chosen, EventKind.WON, DeliveryChannel.EMAIL)
    assert not channel_on(chosen, EventKind.PLACED, DeliveryChannel.EMAIL)
    assert channel_on(chosen, EventKind.LOST, DeliveryChannel.TELEGRAM)
    assert not channel_on(chosen, EventKind.WON, DeliveryChannel.TELEGRAM)
    assert channels_for(chosen, EventKind.LOST, ALL) == [
        (DeliveryChannel.IN_APP, "u1"),
        (DeliveryChannel.EMAIL, "a@example.com"),
        (DeliveryChannel.TELEGRAM, "7"),
    ]


def test_a_channel_without_an_address_or_not_offered_is_never_chosen() -> None:
    prefs = Preferences(user_id="u1", defaults={"email": True, "telegram": True})
    assert channels_for(prefs, EventKind.WON, ALL) == [(DeliveryChannel.IN_APP, "u1")]
    linked = Preferences(user_id="u1", defaults={"telegram": True}, telegram_chat_id=5)
    assert channels_for(linked, EventKind.WON, frozenset({DeliveryChannel.IN_APP})) == [
        (DeliveryChannel.IN_APP, "u1")
    ]


def test_the_rate_limit_sends_the_first_and_digests_the_rest() -> None:
    at = 1_700_000_123.0
    assert (
        delivery_for(DigestChoice.OFF, sent_this_minute=3, limit=3, at=at, overflow_seconds=300)
        == Immediate()
    )
    over = delivery_for(DigestChoice.OFF, sent_this_minute=4, limit=3, at=at, overflow_seconds=300)
    assert over == Digest(1_700_000_100, 300) and over.due_at == 1_700_000_400
    hourly = delivery_for(
        DigestChoice.HOURLY, sent_this_minute=1, limit=3, at=at, overflow_seconds=300
    )
    assert hourly == Digest(1_699_999_200, 3600)


def test_ids_are_derived_and_distinct_per_event_user_and_channel() -> None:
    one = notification_id("placed:o1", "u1", DeliveryChannel.EMAIL)
    assert one == notification_id("placed:o1", "u1", DeliveryChannel.EMAIL)
    others = {
        notification_id("placed:o2", "u1", DeliveryChannel.EMAIL),
        notification_id("placed:o1", "u2", DeliveryChannel.EMAIL),
        notification_id("placed:o1", "u1", DeliveryChannel.TELEGRAM),
    }
    assert one not in others and len(others) == 3
    period = Digest(1_700_000_000, 300)
    assert digest_id("u1", DeliveryChannel.EMAIL, period) == digest_id(
        "u1", DeliveryChannel.EMAIL, period
    )
    assert digest_id("u1", DeliveryChannel.EMAIL, period) != digest_id(
        "u1", DeliveryChannel.EMAIL, Digest(1_700_000_300, 300)
    )


def test_a_digest_summarises_every_event_in_one_message() -> None:
    subject, body = digest_text([f"Trade placed {i}" for i in range(60)], 60)
    assert subject == "60 notifications"
    assert body.count("•") == 50 and "and 10 more" in body
