"""Deriv API v3 facts as data and pure functions: message shapes, error classes, contract terms.

Sources: shared/brokers/deriv.md (binary-com/deriv-api-docs send/receive schemas and the
official python-deriv-api client). Nothing here does I/O, so it is unit-tested directly.
"""

from __future__ import annotations

from decimal import Decimal
from enum import Enum
from typing import Any, Literal

import msgspec

from apps.core.assets import Expiry
from apps.core.brokers.deriv import MappingError, deriv_duration, deriv_symbol

DEFAULT_URL = "ws://127.0.0.1:8701/websockets/v3"
PASSTHROUGH_MAX_BYTES = 3500


# --- errors -----------------------------------------------------------------------------


class ErrorClass(Enum):
    PERMANENT = "permanent"  # reject the order with the broker's message
    TRANSIENT = "transient"  # nothing bought; retry within the signal's validity
    REAUTHORISE = "reauthorise"  # the session lost its login; authorise again, then retry


# Every error code of deriv.md's calls, classified. Why each class:
ERROR_CLASSES: dict[str, ErrorClass] = {
    # The token itself is wrong: no retry can fix it.
    "InvalidToken": ErrorClass.PERMANENT,
    # Our session is not (or no longer) authorised, e.g. after a server-side reset.
    "AuthorizationRequired": ErrorClass.REAUTHORISE,
    # The ask moved above our max price; a fresh price may be within it a moment later.
    "PriceMoved": ErrorClass.TRANSIENT,
    "InsufficientBalance": ErrorClass.PERMANENT,
    # Markets do not reopen within a signal's few seconds of validity.
    "MarketIsClosed": ErrorClass.PERMANENT,
    # Stake below minimum, duration not allowed... the same request fails again.
    "ContractBuyValidationError": ErrorClass.PERMANENT,
    "OfferingsValidationError": ErrorClass.PERMANENT,
    # Server-side failure to create the contract; documented as retryable.
    "ContractCreationFailure": ErrorClass.TRANSIENT,
    "InputValidationFailed": ErrorClass.PERMANENT,
    "RateLimit": ErrorClass.TRANSIENT,
    # Proposal ids are single-use; a fresh proposal (or a one-round-trip buy) works.
    "InvalidContractProposal": ErrorClass.TRANSIENT,
}

DOCUMENTED_ERROR_CODES: tuple[str, ...] = tuple(ERROR_CLASSES)


def classify_error(code: str) -> ErrorClass:
    """Unknown codes are permanent: better a visible rejection than a retry storm."""
    return ERROR_CLASSES.get(code, ErrorClass.PERMANENT)


# --- contract terms (the asset and expiry mapping is apps.core.brokers.deriv's) ---------


class DerivContract(msgspec.Struct, frozen=True, kw_only=True):
    """The ``parameters`` object of a one-round-trip ``buy``."""

    contract_type: Literal["CALL", "PUT"]
    currency: str
    symbol: str
    amount: Decimal
    basis: Literal["stake"] = "stake"
    duration: int
    duration_unit: Literal["t", "s"]


def contract_for(
    asset: str, direction: Literal["CALL", "PUT"], expiry: Expiry, stake: Decimal, currency: str
) -> DerivContract | MappingError:
    symbol = deriv_symbol(asset)
    if isinstance(symbol, MappingError):
        return symbol
    duration = deriv_duration(asset, expiry)
    if isinstance(duration, MappingError):
        return duration
    return DerivContract(
        contract_type=direction,
        currency=currency,
        symbol=symbol,
        amount=stake,
        duration=duration[0],
        duration_unit=duration[1],
    )


def contract_end(start: int | None, expiry: Expiry) -> int | None:
    """The epoch second a contract bought at ``start`` ends; unknown for tick contracts,
    whose end depends on the ticks."""
    if start is None or not start or expiry.unit != "seconds":
        return None
    return start + expiry.amount


def symbol_of_shortcode(shortcode: str) -> str:
    """``CALL_R_100_10_1587533920_1587533980_S0P_0`` → ``R_100``; ``frxEURUSD`` likewise.

    Used to reconcile against ``profit_table``, whose rows name the asset only here.
    """
    parts = shortcode.split("_")
    # type, then symbol (which may itself contain "_"), then stake, start, expiry, barrier, 0
    return "_".join(parts[1:-5]) if len(parts) > 6 else ""


# --- wire shapes (replies) --------------------------------------------------------------
# Decoded with strict=False so numbers that arrive as strings (Deriv's newer API) parse.


class ApiError(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    message: str = ""
    details: dict[str, Any] | None = None


class BuyReceipt(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    contract_id: int
    buy_price: Decimal
    payout: Decimal
    purchase_time: int
    transaction_id: int
    balance_after: Decimal | None = None
    start_time: int | None = None
    shortcode: str = ""
    longcode: str = ""


class MultiBuyResult(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    token: str
    contract_id: int | None = None
    buy_price: Decimal | None = None
    payout: Decimal | None = None
    purchase_time: int | None = None
    transaction_id: int | None = None
    start_time: int | None = None
    shortcode: str = ""
    code: str | None = None
    message_to_client: str | None = None


class OpenContract(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    contract_id: int
    buy_price: Decimal
    is_sold: int = 0
    is_expired: int = 0
    status: str | None = None
    sell_price: Decimal | None = None
    sell_time: int | None = None
    profit: Decimal | None = None
    payout: Decimal | None = None
    # The spots: Deriv names them entry_spot/entry_tick and exit_tick/sell_spot.
    entry_spot: Decimal | None = None
    entry_tick: Decimal | None = None
    exit_tick: Decimal | None = None
    sell_spot: Decimal | None = None
    date_expiry: int | None = None

    @property
    def entry_value(self) -> Decimal | None:
        return self.entry_spot if self.entry_spot is not None else self.entry_tick

    @property
    def exit_value(self) -> Decimal | None:
        return self.exit_tick if self.exit_tick is not None else self.sell_spot


class PortfolioContract(msgspec.Struct, frozen=True, kw_only=True):
    contract_id: int
    buy_price: Decimal
    contract_type: str
    symbol: str
    purchase_time: int
    transaction_id: int
    payout: Decimal | None = None
    expiry_time: int | None = None


class ProfitTableRow(msgspec.Struct, frozen=True, kw_only=True):
    contract_id: int
    buy_price: Decimal
    purchase_time: int
    transaction_id: int
    shortcode: str = ""
    contract_type: str = ""
    payout: Decimal | None = None
    sell_price: Decimal | None = None
    sell_time: int | None = None
