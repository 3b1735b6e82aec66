"""The Deriv simulator's accounts and contracts, and the terms a proposal or buy prices.

An account's ``balance`` body, a contract's replies (``proposal_open_contract``, the
ledger row) and its journal records are made here, so every listing repeats the same
fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from apps.brokers.deriv.simulator.journal import Bought, Sold
from apps.brokers.deriv.simulator.wire import ApiFailure

CENT = Decimal("0.01")
ZERO = Decimal(0)


@dataclass(slots=True)
class Account:
    loginid: str
    token: str
    currency: str
    balance: Decimal
    is_virtual: bool

    def balance_body(self) -> dict[str, Any]:
        return {"balance": self.balance, "currency": self.currency, "loginid": self.loginid}


@dataclass(slots=True)
class Contract:
    contract_id: int
    loginid: str
    currency: str
    symbol: str
    contract_type: str
    buy_price: Decimal
    payout: Decimal
    purchase_time: int
    duration: int
    duration_unit: str
    date_expiry: int
    real_seconds: float
    buy_transaction_id: int
    passthrough: dict[str, Any] | None
    entry_tick: float
    entry_tick_time: int
    exit_tick: float | None = None
    exit_tick_time: int | None = None
    is_expired: int = 0
    is_sold: int = 0
    status: str = "open"
    sell_price: Decimal | None = None
    sell_time: int | None = None
    sell_transaction_id: int | None = None
    # Epoch milliseconds of the booking: purchase_time is whole seconds (Deriv's form),
    # too coarse for the fan-out benchmark's placement latencies.
    booked_ms: float = 0.0
    # Made once at booking (see Terms): every receipt, listing and update repeats them.
    shortcode: str = ""
    longcode: str = ""

    @property
    def profit(self) -> Decimal:
        if self.sell_price is None:
            return ZERO
        return self.sell_price - self.buy_price

    def receipt(self) -> dict[str, Any]:
        """What a buy answers for this contract (``buy`` and each account of
        ``buy_contract_for_multiple_accounts``)."""
        return {
            "buy_price": self.buy_price,
            "contract_id": self.contract_id,
            "longcode": self.longcode,
            "payout": self.payout,
            "purchase_time": self.purchase_time,
            "shortcode": self.shortcode,
            "start_time": self.purchase_time,
            "transaction_id": self.buy_transaction_id,
        }

    def open_contract(self) -> dict[str, Any]:
        sell_price = self.sell_price
        profit = ZERO if sell_price is None else sell_price - self.buy_price
        sell_transaction_id = self.sell_transaction_id
        return {
            "contract_id": self.contract_id,
            "contract_type": self.contract_type,
            "currency": self.currency,
            "underlying": self.symbol,
            "buy_price": self.buy_price,
            "payout": self.payout,
            "bid_price": sell_price if self.is_sold else ZERO,
            "profit": profit,
            "profit_percentage": (profit / self.buy_price * 100).quantize(CENT),
            "is_expired": self.is_expired,
            "is_settleable": self.is_expired,
            "is_sold": self.is_sold,
            "status": self.status,
            "sell_price": sell_price,
            "sell_time": self.sell_time,
            "entry_spot": self.entry_tick,
            "entry_tick": self.entry_tick,
            "entry_tick_time": self.entry_tick_time,
            "exit_tick": self.exit_tick,
            "exit_tick_time": self.exit_tick_time,
            "sell_spot": self.exit_tick if self.is_sold else None,
            "sell_spot_time": self.sell_time if self.is_sold else None,
            "date_start": self.purchase_time,
            "date_expiry": self.date_expiry,
            "purchase_time": self.purchase_time,
            "transaction_ids": (
                {"buy": self.buy_transaction_id, "sell": sell_transaction_id}
                if sell_transaction_id
                else {"buy": self.buy_transaction_id}
            ),
            "shortcode": self.shortcode,
            "longcode": self.longcode,
        }

    def ledger_row(self) -> dict[str, Any]:
        return {
            "loginid": self.loginid,
            "contract_id": self.contract_id,
            "symbol": self.symbol,
            "contract_type": self.contract_type,
            "stake": self.buy_price,
            "payout": self.payout,
            "currency": self.currency,
            "purchase_time": self.purchase_time,
            "purchase_time_ms": self.booked_ms,
            "transaction_id": self.buy_transaction_id,
            "passthrough": self.passthrough,
            "status": self.status,
            "sell_price": self.sell_price,
            "profit": self.profit if self.is_sold else None,
            "date_expiry": self.date_expiry,
            "entry_spot": self.entry_tick,
            "exit_spot": self.exit_tick if self.is_sold else None,
        }


@dataclass(slots=True)
class Terms:
    """Validated and priced contract parameters: what a proposal quotes and a buy books."""

    contract_type: str
    currency: Any  # as asked for; a buy checks it against the account's
    symbol: str
    duration: int
    duration_unit: str
    seconds: float
    ask_price: Decimal
    payout: Decimal
    _longcode: str | None = None
    _shortcode: tuple[int, str] | None = None  # (purchase_time, shortcode) last made

    def longcode(self) -> str:
        if self._longcode is None:
            word = "higher" if self.contract_type == "CALL" else "lower"
            unit = "ticks" if self.duration_unit == "t" else "seconds"
            self._longcode = (
                f"Win payout if {self.symbol} is strictly {word} than entry spot at "
                f"{self.duration} {unit} after contract start time."
            )
        return self._longcode

    def shortcode(self, purchase_time: int, date_expiry: int) -> str:
        """Deriv's form: TYPE_SYMBOL_PAYOUT_START_EXPIRY_BARRIER_0 (barrier S0P = at spot).

        A batch books its contracts within the same second: made once for all of them.
        """
        made = self._shortcode
        if made is not None and made[0] == purchase_time:
            return made[1]
        expiry = f"{self.duration}T" if self.duration_unit == "t" else str(date_expiry)
        code = (
            f"{self.contract_type}_{self.symbol.upper()}_{self.payout}_"
            f"{purchase_time}_{expiry}_S0P_0"
        )
        self._shortcode = (purchase_time, code)
        return code

    def as_stake_params(self) -> dict[str, Any]:
        """Parameters that price to these terms again (a stored proposal being bought)."""
        return {
            "contract_type": self.contract_type,
            "currency": self.currency,
            "symbol": self.symbol,
            "duration": self.duration,
            "duration_unit": self.duration_unit,
            "amount": self.ask_price,
            "basis": "stake",
        }


@dataclass(slots=True)
class BuyPlan:
    """A buy request's shared part, checked once however many accounts it is for.

    The checks run in the order a single buy makes them; the currency check (the only
    account-dependent one before the balance) splits them in two.
    """

    failure: ApiFailure | None = None  # failed before the currency check
    currency: Any = None
    late_failure: ApiFailure | None = None  # failed after it
    terms: Terms | None = None


def journal_record[R: (Bought, Sold)](kind: type[R], contract: Contract) -> R:
    """The journal's record of a contract bought or sold: those fields of the contract."""
    return kind(*(getattr(contract, name) for name in kind.__struct_fields__))


def contract_of(bought: Bought) -> Contract:
    terms = Terms(
        contract_type=bought.contract_type,
        currency=bought.currency,
        symbol=bought.symbol,
        duration=bought.duration,
        duration_unit=bought.duration_unit,
        seconds=float(bought.date_expiry - bought.purchase_time),
        ask_price=bought.buy_price,
        payout=bought.payout,
    )
    return Contract(
        **msgspec.structs.asdict(bought),
        entry_tick_time=bought.purchase_time,
        shortcode=terms.shortcode(bought.purchase_time, bought.date_expiry),
        longcode=terms.longcode(),
    )


def apply_sale(contract: Contract, sold: Sold) -> None:
    for name in Sold.__struct_fields__:
        setattr(contract, name, getattr(sold, name))
    contract.is_expired = contract.is_sold = 1
    contract.exit_tick_time = sold.sell_time


def by_purchase_time(contract: Contract) -> int:
    return contract.purchase_time


def by_contract_id(contract: Contract) -> int:
    return contract.contract_id
