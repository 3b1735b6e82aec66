"""Each broker's rules for one signal: its asset, its expiry and its stake limits. Pure.

The router applies them after a subscriber's own risk rules, so an order reaches a broker
worker only in terms that broker can take, and a subscriber whose broker cannot take the
signal gets a refusal that says why in plain words (``IQ Option does not offer R_100``)
instead of a broker error later:

- the asset must be one the broker lists (Deriv: :func:`apps.core.brokers.deriv.deriv_symbol`;
  IQ Option: :data:`apps.core.brokers.iqoption.ACTIVE_IDS`);
- the expiry must be one the broker sells (Deriv: its duration ranges, exactly; IQ Option:
  the legal expiry nearest to ``created_at + expiry_seconds`` within the signal's tolerance,
  chosen at the signal's creation so every router and every redelivery chooses the same);
- the stake must be within the broker's limits: below the minimum is refused — or raised
  to it where the subscriber opted in (``round_up_to_min_stake``), never above their own
  max stake (the loss room is then checked with the raised stake by the daily counters)
  — and above the maximum it is trimmed (as the subscriber's own max stake trims).

The first two depend only on the broker kind and the signal (:func:`broker_terms`, decided
once per kind for a whole fan-out); the stake limits need each order's stake and currency
(:func:`broker_stake`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import assert_never

from apps.core.assets import Expiry
from apps.core.brokers import deriv, iqoption
from apps.core.messages import Signal
from apps.core.routing import BrokerKind
from apps.router.risk import CENT, Refused, Sized

BROKER_NAMES: dict[BrokerKind, str] = {"deriv": "Deriv", "iqoption": "IQ Option"}


@dataclass(frozen=True, slots=True)
class BrokerTerms:
    """What an order for this broker carries beyond the signal's own terms."""

    # Epoch seconds the contract ends, for brokers that sell fixed instants (IQ Option).
    expiry_at: int | None = None


def broker_terms(
    broker_kind: BrokerKind, signal: Signal, default_tolerance_seconds: int
) -> BrokerTerms | Refused:
    """The broker's terms for ``signal``, or why the broker cannot take it.

    ``default_tolerance_seconds`` applies when the signal states no tolerance of its own.
    """
    expiry = Expiry(amount=signal.expiry_seconds)
    match broker_kind:
        case "deriv":
            return _deriv_terms(signal.asset, expiry)
        case "iqoption":
            tolerance = (
                default_tolerance_seconds
                if signal.expiry_tolerance_seconds is None
                else signal.expiry_tolerance_seconds
            )
            return _iqoption_terms(signal.asset, signal.created_at, expiry, tolerance)
        case _:
            assert_never(broker_kind)


def _deriv_terms(asset: str, expiry: Expiry) -> BrokerTerms | Refused:
    symbol = deriv.deriv_symbol(asset)
    if isinstance(symbol, deriv.MappingError):
        return Refused(f"Deriv does not offer {asset}")
    duration = deriv.deriv_duration(asset, expiry)
    if isinstance(duration, deriv.MappingError):
        return Refused(duration.message)
    return BrokerTerms()


def _iqoption_terms(
    asset: str, created_at: float, expiry: Expiry, tolerance_seconds: int
) -> BrokerTerms | Refused:
    if asset not in iqoption.ACTIVE_IDS:
        return Refused(f"IQ Option does not offer {asset}")
    if expiry.unit == "ticks":
        return Refused(f"IQ Option has no tick expiries ({expiry.amount} ticks on {asset})")
    match iqoption.choose_expiry(created_at, expiry.amount, tolerance_seconds):
        case iqoption.LegalExpiry(at=at):
            return BrokerTerms(expiry_at=at)
        case iqoption.NoLegalExpiry(reason=reason):
            return Refused(reason)


def stake_limits(broker_kind: BrokerKind, currency: str) -> tuple[Decimal, Decimal] | None:
    """The broker's (minimum, maximum) stake per contract in ``currency``; None where the
    copier knows no limits (the broker's own check then applies at purchase)."""
    match broker_kind:
        case "deriv":
            if currency not in deriv.STAKE_LIMIT_CURRENCIES:
                return None
            return deriv.MIN_STAKE, deriv.MAX_STAKE
        case "iqoption":
            return iqoption.MIN_STAKE, iqoption.MAX_STAKE
        case _:
            assert_never(broker_kind)


def broker_stake(
    broker_kind: BrokerKind,
    stake: Decimal,
    currency: str,
    *,
    round_up_to: Decimal | None = None,
) -> Sized | Refused:
    """``stake`` within the broker's limits: below the minimum it is refused, or raised to
    it when ``round_up_to`` (the subscriber's max stake, for those who opted in) allows;
    above the maximum it is trimmed (a trim keeps whole cents: the maxima are whole units)."""
    limits = stake_limits(broker_kind, currency)
    if limits is None:
        return Sized(stake)
    low, high = limits
    if stake < low:
        name = BROKER_NAMES[broker_kind]
        if round_up_to is None:
            return Refused(f"stake {stake:.2f} is below {name}'s minimum of {low:.2f}")
        if low > round_up_to:
            return Refused(
                f"stake {stake:.2f} is below {name}'s minimum of {low:.2f}, and rounding "
                f"it up would exceed your max stake of {round_up_to:.2f}"
            )
        return Sized(low.quantize(CENT))
    return Sized(min(stake, high).quantize(CENT))
