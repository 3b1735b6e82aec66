"""A subscription's daily exposure: what the router reserves and the ledger releases.

The daily loss limit holds ``settled losses + open stakes ≤ limit`` under concurrent
signals: the router's check-and-take script (:mod:`apps.router.counters`) reserves an
order's stake in the same atomic step that checks the room left, and the ledger
(:mod:`apps.ledger.risk`) releases the reservation exactly once when the order ends
without an open contract, or turns it into realised loss when the contract settles lost.

Both keep their state in one Redis hash per subscription and UTC day
(``Topology.risk_key(subscription_id, day_epoch, "exposure")``):

- :data:`LOST`: the realised loss in minor units;
- :data:`OPEN`: the sum of the stakes reserved and not yet released, in minor units;
- ``o:<order_id>``: the order's reservation — its stake in minor units while open,
  :data:`RELEASED` once released without a loss, :data:`SETTLED` once settled. A field that
  is present is never reserved again, so a redelivered signal does not reserve twice,
  even after the ledger released the first reservation.

The day is the UTC day of the signal's creation (:func:`exposure_day`), which every
execution of the order repeats: the ledger releases into the same day's hash the router
reserved in, whenever the order ends.

:class:`Exposure` is the same accounting as a pure model: the property tests check the
invariant on it, and the Valkey tests check that the scripts agree with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from apps.core.routing import RoutingRecord

LOST = "lost"
OPEN = "open"
RELEASED = "r"
SETTLED = "s"
ORDER_PREFIX = "o:"
EXPOSURE_COUNTER = "exposure"
# Exposure hashes outlive their day: a contract bought before midnight settles after it.
EXPOSURE_TTL_SECONDS = 3 * 24 * 3600
# Peaks live in the balances hash next to the balances, so the router reads both in the
# HMGET it already makes: field ``peak:<broker_account_id>``, a decimal string.
PEAK_PREFIX = "peak:"
DRAWDOWN_PAUSE_PREFIX = "maximum drawdown reached"


def exposure_day(signal_created_at: float | None, at: float) -> float:
    """The epoch whose UTC day holds an order's reservation: its signal's creation (the
    same for every router, every redelivery and every later state), else ``at``."""
    return at if signal_created_at is None else signal_created_at


def to_minor(amount: Decimal) -> int:
    """Hundredths; every supported currency has two decimals."""
    return int((amount * 100).to_integral_value())


def from_minor(minor: int) -> Decimal:
    return Decimal(minor).scaleb(-2)


def loss_limit_reason(used_minor: int, limit: Decimal) -> str:
    """The router's refusal when an order's stake does not fit in the day's loss room."""
    return (
        f"daily loss limit reached: {from_minor(used_minor):,.2f} of {limit:,.2f} "
        "at risk or lost today"
    )


def peak_field(broker_account_id: str) -> str:
    return f"{PEAK_PREFIX}{broker_account_id}"


def drawdown_percent(balance: Decimal, peak: Decimal | None) -> Decimal:
    """How far ``balance`` is below the account's peak, in % (0 at or above it)."""
    top = balance if peak is None else max(peak, balance)
    if top <= 0:
        return Decimal(0)
    return (top - balance) * 100 / top


def drawdown_reason(balance: Decimal, peak: Decimal | None, limit: Decimal) -> str | None:
    """The pause reason once ``balance`` is ``limit`` % or more below its peak, else None."""
    if drawdown_percent(balance, peak) < limit:
        return None
    top = balance if peak is None else max(peak, balance)
    down = drawdown_percent(balance, peak).quantize(Decimal("0.1"))
    return (
        f"{DRAWDOWN_PAUSE_PREFIX}: balance {balance:,.2f} is {down} % below its peak "
        f"{top:,.2f} (limit {limit} %); resume the subscription to copy again"
    )


def paused_for_drawdown(paused_reason: str) -> bool:
    return paused_reason.startswith(DRAWDOWN_PAUSE_PREFIX)


def needs_balance(record: RoutingRecord) -> bool:
    """The record's rules read the broker balance (and its peak)."""
    return (
        record.stake_mode == "percent"
        or record.balance_floor is not None
        or record.max_drawdown_percent is not None
    )


@dataclass
class Exposure:
    """One subscription's day, as the scripts keep it (amounts in minor units)."""

    lost: int = 0
    open: int = 0
    orders: dict[str, int | str] = field(default_factory=dict)

    def reserve(self, order_id: str, stake: int, limit: int) -> tuple[bool, int]:
        """Take ``stake`` for ``order_id`` if it fits; (taken or already held, used)."""
        used = self.lost + self.open
        if order_id in self.orders:
            return True, used
        if used + stake > limit:
            return False, used
        self.orders[order_id] = stake
        self.open += stake
        return True, used

    def release(self, order_id: str) -> None:
        """The order ended without an open contract (rejected, expired, failed)."""
        held = self.orders.get(order_id)
        if isinstance(held, int):
            self.open -= held
        if held is None or isinstance(held, int):
            self.orders[order_id] = RELEASED

    def placed(self, order_id: str, stake: int) -> None:
        """The broker sold the contract after all: a released reservation is taken again
        (an open contract is at risk whatever was said before)."""
        if self.orders.get(order_id) == RELEASED:
            self.orders[order_id] = stake
            self.open += stake

    def settle(self, order_id: str, loss: int) -> None:
        """The contract settled; ``loss`` (≥ 0) becomes realised, the reservation goes."""
        held = self.orders.get(order_id)
        if held == SETTLED:
            return
        if isinstance(held, int):
            self.open -= held
        self.lost += loss
        self.orders[order_id] = SETTLED
