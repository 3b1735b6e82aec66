"""Pure Deriv protocol rules: asset/expiry mapping, error classes, shortcodes, retries."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.brokers.base import (
    BrokerAccount,
    BrokerAdapter,
    ContractClaims,
    Expired,
    Found,
    OrderRequest,
    Placed,
    PlaceOutcome,
    ReconcileResult,
    Rejected,
    Settlement,
    SettlementUnavailable,
    TransientFailure,
    place_until_valid,
)
from apps.brokers.deriv.protocol import (
    DOCUMENTED_ERROR_CODES,
    ErrorClass,
    classify_error,
    contract_for,
    symbol_of_shortcode,
)
from apps.core.assets import CANONICAL_ASSETS, AssetClass, Expiry
from apps.core.brokers.deriv import MappingError, deriv_duration, deriv_symbol


def test_forex_and_metals_get_the_frx_prefix_and_synthetics_keep_their_name() -> None:
    assert deriv_symbol("EURUSD") == "frxEURUSD"
    assert deriv_symbol("XAUUSD") == "frxXAUUSD"
    assert deriv_symbol("R_100") == "R_100"
    assert deriv_symbol("1HZ100V") == "1HZ100V"


def test_unknown_asset_is_rejected_not_guessed() -> None:
    result = deriv_symbol("frxEURUSD")  # a Deriv name is not a canonical one
    assert isinstance(result, MappingError) and result.code == "UnsupportedAsset"


@given(st.sampled_from(sorted(CANONICAL_ASSETS)), st.integers(min_value=-10, max_value=100_000))
def test_seconds_map_exactly_or_are_rejected(asset: str, seconds: int) -> None:
    result = deriv_duration(asset, Expiry(amount=seconds))
    low = 15 if CANONICAL_ASSETS[asset] is AssetClass.SYNTHETIC else 60
    if low <= seconds <= 86_400:
        assert result == (seconds, "s")  # never rounded: the provider's expiry is kept
    else:
        assert isinstance(result, MappingError) and result.code == "UnsupportedExpiry"


@given(st.integers(min_value=-2, max_value=20))
def test_ticks_exist_on_synthetics_only(ticks: int) -> None:
    synthetic = deriv_duration("R_50", Expiry(amount=ticks, unit="ticks"))
    forex = deriv_duration("EURUSD", Expiry(amount=ticks, unit="ticks"))
    assert isinstance(forex, MappingError)
    if 1 <= ticks <= 10:
        assert synthetic == (ticks, "t")
    else:
        assert isinstance(synthetic, MappingError)


def test_contract_parameters_for_a_one_round_trip_buy() -> None:
    contract = contract_for("EURUSD", "PUT", Expiry(amount=300), Decimal("2.50"), "USD")
    assert not isinstance(contract, MappingError)
    assert (contract.symbol, contract.contract_type, contract.amount) == (
        "frxEURUSD",
        "PUT",
        Decimal("2.50"),
    )
    assert (contract.duration, contract.duration_unit, contract.basis) == (300, "s", "stake")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("InvalidToken", ErrorClass.PERMANENT),
        ("InsufficientBalance", ErrorClass.PERMANENT),
        ("MarketIsClosed", ErrorClass.PERMANENT),
        ("ContractBuyValidationError", ErrorClass.PERMANENT),
        ("OfferingsValidationError", ErrorClass.PERMANENT),
        ("InputValidationFailed", ErrorClass.PERMANENT),
        ("RateLimit", ErrorClass.TRANSIENT),
        ("PriceMoved", ErrorClass.TRANSIENT),
        ("ContractCreationFailure", ErrorClass.TRANSIENT),
        ("InvalidContractProposal", ErrorClass.TRANSIENT),
        ("AuthorizationRequired", ErrorClass.REAUTHORISE),
        ("SomethingNew", ErrorClass.PERMANENT),
    ],
)
def test_error_classes(code: str, expected: ErrorClass) -> None:
    assert classify_error(code) is expected


def test_every_documented_code_has_a_deliberate_class() -> None:
    assert len(DOCUMENTED_ERROR_CODES) == 11


@pytest.mark.parametrize(
    ("shortcode", "symbol"),
    [
        ("CALL_R_100_19.50_1587533920_1587533980_S0P_0", "R_100"),
        ("PUT_FRXEURUSD_3.90_1587533920_1587534220_S0P_0", "FRXEURUSD"),
        ("CALL_1HZ100V_1.95_1587533920_5T_S0P_0", "1HZ100V"),
        ("garbage", ""),
    ],
)
def test_symbol_of_shortcode(shortcode: str, symbol: str) -> None:
    assert symbol_of_shortcode(shortcode) == symbol


class _Scripted(BrokerAdapter):
    """Answers place() from a script: the retry policy is what is under test here."""

    kind = "scripted"

    def __init__(self, outcomes: list[PlaceOutcome]) -> None:
        self.outcomes = outcomes
        self.calls = 0

    async def connect(self, account: BrokerAccount) -> None:
        return None

    async def place(self, order: OrderRequest) -> PlaceOutcome:
        self.calls += 1
        return self.outcomes.pop(0)

    async def reconcile(
        self, order: OrderRequest, claims: ContractClaims | None = None
    ) -> ReconcileResult:
        raise NotImplementedError

    async def follow_settlement(
        self, account: BrokerAccount, contract_id: str
    ) -> Settlement | SettlementUnavailable:
        raise NotImplementedError

    async def close(self) -> None:
        return None


def _order(valid_for: float) -> OrderRequest:
    return OrderRequest(
        order_id="o1",
        signal_id="s1",
        channel_id="c1",
        account=BrokerAccount(token="t"),
        asset="R_100",
        direction="CALL",
        expiry=Expiry(amount=15),
        stake=Decimal(1),
        valid_until=time.time() + valid_for,
    )


async def test_transient_failures_are_retried_until_placed() -> None:
    placed = Placed(
        order_id="o1",
        contract_id="1",
        buy_price=Decimal(1),
        payout=Decimal("1.95"),
        purchase_time=0,
        broker_ref="2",
    )
    flaky = TransientFailure(order_id="o1", code="ContractCreationFailure", message="x")
    adapter = _Scripted([flaky, flaky, placed])
    assert await place_until_valid(adapter, _order(5)) == placed
    assert adapter.calls == 3


async def test_retries_stop_at_valid_until() -> None:
    slow = TransientFailure(order_id="o1", code="RateLimit", message="later", retry_after=10)
    adapter = _Scripted([slow])
    outcome = await place_until_valid(adapter, _order(0.5))
    assert isinstance(outcome, Expired) and outcome.last_code == "RateLimit"
    assert adapter.calls == 1


async def test_rejections_are_final() -> None:
    rejected = Rejected(order_id="o1", code="InsufficientBalance", message="poor")
    adapter = _Scripted([rejected])
    assert await place_until_valid(adapter, _order(5)) == rejected


def test_found_wraps_a_placed_contract() -> None:
    placed = Placed(
        order_id="o",
        contract_id="1",
        buy_price=Decimal(1),
        payout=Decimal(2),
        purchase_time=0,
        broker_ref="t",
    )
    assert Found(placed=placed).placed is placed


def test_account_repr_keeps_the_token_secret() -> None:
    assert "secret" not in repr(BrokerAccount(token="secret", login="CR1"))
