"""The notifier's decisions, as pure functions: which event an execution is, who hears of
it on which delivery channel, whether it goes out now or in a digest, and the ids that
make every step repeatable.

Guarantees:
- an event's key is derived from what it is about (order, subscription, day or period),
  never random, so a redelivered execution or a repeated scan yields the same key, and
  the same :func:`notification_id` per (event, user, channel): the outbox and the in-app
  list hold it once however often it is produced;
- preferences resolve in one order: the (kind, channel) override, else the user's default
  for the channel, else the built-in default (in-app on, e-mail and Telegram off);
- a channel the user has no address for (no linked chat, no e-mail) is never chosen;
- over ``limit`` messages in a minute on one channel, the rest of that user's events on it
  go to a digest instead of being dropped.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

import msgspec

from apps.core.messages import Execution, ExecutionState, Outcome
from apps.core.notifications import (
    DIGEST_SECONDS,
    DeliveryChannel,
    DigestChoice,
    EventKind,
    Preferences,
    channel_on,
)

# The reasons of a pause the subscriber did not choose, as the router repeats them on
# each refused order: a drawdown limit (apps.router), refused broker credentials
# (apps.core.relink), a failed payment (apps.payments.lifecycle).
PAUSE_PREFIXES = (
    "maximum drawdown reached",
    "broker account needs re-linking",
    "payment failed",
)


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Something one user hears about, with the text every channel renders."""

    key: str  # what makes it this event: see event_of / ending_event
    kind: EventKind
    user_id: str
    at: float
    title: str
    body: str
    order_id: str = ""
    subscription_id: str = ""


def address(prefs: Preferences, channel: DeliveryChannel) -> str | None:
    """Where ``channel`` reaches the user, or None when it cannot."""
    match channel:
        case DeliveryChannel.IN_APP:
            return prefs.user_id
        case DeliveryChannel.EMAIL:
            return prefs.email or None
        case DeliveryChannel.TELEGRAM:
            return None if prefs.telegram_chat_id is None else str(prefs.telegram_chat_id)


def channels_for(
    prefs: Preferences, kind: EventKind, available: frozenset[DeliveryChannel]
) -> list[tuple[DeliveryChannel, str]]:
    """(channel, address) of every channel this event goes out on."""
    chosen = []
    for channel in DeliveryChannel:
        if channel not in available or not channel_on(prefs, kind, channel):
            continue
        to = address(prefs, channel)
        if to is not None:
            chosen.append((channel, to))
    return chosen


def notification_id(event_key: str, user_id: str, channel: DeliveryChannel) -> str:
    """The delivery's id: the same (event, user, channel) always gives the same id."""
    digest = hashlib.sha256(f"{event_key}\x1f{user_id}\x1f{channel.value}".encode()).hexdigest()
    return f"n{digest[:32]}"


def _money(value: Decimal | None, currency: str | None) -> str:
    if value is None:
        return "?"
    sign = "+" if value > 0 else ""
    return f"{sign}{value:.2f} {currency or ''}".rstrip()


def _trade(execution: Execution) -> str:
    direction = execution.direction.value if execution.direction else ""
    parts = [p for p in (execution.asset, direction) if p]
    return " ".join(parts) or execution.order_id


def is_pause(reason: str | None) -> bool:
    return bool(reason) and any(reason.startswith(p) for p in PAUSE_PREFIXES)  # type: ignore[union-attr]


def event_of(execution: Execution) -> Event | None:
    """The event an execution is for its subscriber, or None when it is none of theirs
    (expired, failed and unknown orders are in the trade list, not notified)."""
    common = {
        "user_id": execution.user_id,
        "at": execution.at,
        "order_id": execution.order_id,
        "subscription_id": execution.subscription_id,
    }
    trade = _trade(execution)
    match execution.state:
        case ExecutionState.PLACED:
            stake = _money(execution.stake, execution.currency).lstrip("+")
            return Event(
                key=f"placed:{execution.order_id}",
                kind=EventKind.PLACED,
                title=f"Trade placed: {trade}",
                body=f"Your copy of {trade} was placed for {stake}.",
                **common,  # type: ignore[arg-type]
            )
        case ExecutionState.REJECTED if is_pause(execution.reason):
            # Every order of a paused subscription is refused with the same reason: one
            # notice per subscription, reason and UTC day.
            day = int(execution.at // 86400)
            return Event(
                key=f"paused:{execution.subscription_id}:{execution.reason}:{day}",
                kind=EventKind.PAUSED,
                title="Subscription paused",
                body=f"Your subscription stopped copying: {execution.reason}.",
                **common,  # type: ignore[arg-type]
            )
        case ExecutionState.REJECTED:
            reason = execution.reason or "no reason given"
            return Event(
                key=f"rejected:{execution.order_id}",
                kind=EventKind.REJECTED,
                title=f"Trade rejected: {trade}",
                body=f"Your copy of {trade} was not placed: {reason}.",
                **common,  # type: ignore[arg-type]
            )
        case ExecutionState.SETTLED if execution.outcome is Outcome.WON:
            profit = _money(execution.profit, execution.currency)
            return Event(
                key=f"settled:{execution.order_id}",
                kind=EventKind.WON,
                title=f"Trade won: {trade} {profit}",
                body=f"Your copy of {trade} won: {profit}.",
                **common,  # type: ignore[arg-type]
            )
        case ExecutionState.SETTLED if execution.outcome is Outcome.LOST:
            profit = _money(execution.profit, execution.currency)
            return Event(
                key=f"settled:{execution.order_id}",
                kind=EventKind.LOST,
                title=f"Trade lost: {trade} {profit}",
                body=f"Your copy of {trade} lost: {profit}.",
                **common,  # type: ignore[arg-type]
            )
        case _:
            return None


def ending_event(
    *, user_id: str, subscription_id: str, channel_name: str, expires_at: float, now: float
) -> Event:
    """A subscription that ends soon; keyed by its end, so each period is told once."""
    days = max(0, round((expires_at - now) / 86400))
    name = channel_name or "a channel"
    when = "today" if days == 0 else ("tomorrow" if days == 1 else f"in {days} days")
    return Event(
        key=f"ending:{subscription_id}:{int(expires_at)}",
        kind=EventKind.ENDING,
        user_id=user_id,
        at=now,
        subscription_id=subscription_id,
        title=f"Subscription ending {when}",
        body=f"Your subscription to {name} ends {when}; renew it to keep copying.",
    )


# ---- rate limit and digest -----------------------------------------------------------


class Immediate(msgspec.Struct, frozen=True):
    pass


class Digest(msgspec.Struct, frozen=True):
    period_start: int  # epoch seconds
    period_seconds: int

    @property
    def due_at(self) -> int:
        return self.period_start + self.period_seconds


Delivery = Immediate | Digest


def period_of(at: float, seconds: int) -> Digest:
    return Digest(int(at // seconds) * seconds, seconds)


def delivery_for(
    digest: DigestChoice, *, sent_this_minute: int, limit: int, at: float, overflow_seconds: int
) -> Delivery:
    """Now, or into which digest: the user's digest choice first; otherwise the first
    ``limit`` of a minute go now (``sent_this_minute`` counts this one) and the rest are
    gathered for ``overflow_seconds``."""
    if digest is not DigestChoice.OFF:
        return period_of(at, DIGEST_SECONDS[digest])
    if sent_this_minute <= limit:
        return Immediate()
    return period_of(at, overflow_seconds)


def digest_id(user_id: str, channel: DeliveryChannel, period: Digest) -> str:
    return notification_id(
        f"digest:{period.period_start}:{period.period_seconds}", user_id, channel
    )


def digest_text(lines: list[str], total: int) -> tuple[str, str]:
    """Subject and body of one summary message (at most 50 lines shown)."""
    shown = lines[:50]
    more = total - len(shown)
    body = "\n".join(f"• {line}" for line in shown)
    if more > 0:
        body += f"\n… and {more} more (see the dashboard)."
    return f"{total} notifications", body


def backoff_seconds(attempt: int, *, base: float = 2.0, cap: float = 600.0) -> float:
    """Wait before retry ``attempt`` (1-based): doubling from ``base``, at most ``cap``."""
    return float(min(cap, base * 2 ** max(0, attempt - 1)))
