"""The IQ Option adapter's pure protocol: messages out, replies read into values."""

from __future__ import annotations

import time
from decimal import Decimal

import msgspec
import pytest

from apps.brokers.base import BrokerAccount, OrderRequest
from apps.brokers.iqoption.adapter import account_key, balance_type_of, terms_of
from apps.brokers.iqoption.protocol import (
    RATE_LIMITED,
    REJECTION_CODES,
    UNKNOWN_REJECTION,
    ListedOption,
    OptionClosed,
    OptionOpened,
    OptionRefused,
    ReplyUnreadable,
    StillOpen,
    UnknownOption,
    betinfo,
    get_options,
    heartbeat_answer,
    open_option,
    option_type_for,
    payout_of,
    read_betinfo,
    read_open_option,
    read_option_closed,
    read_options,
    read_refusal,
    same_terms,
    subscribe_positions,
)
from apps.core.assets import Expiry
from apps.core.brokers.iqoption import (
    BINARY,
    STATUS_MARKET_CLOSED,
    STATUS_NO_FUNDS,
    STATUS_SUSPENDED,
    STATUS_TIME_OVER,
    TURBO,
    legal_expiries,
)

NOW = 1_800_000_010.0  # 10 s into a minute


def test_open_option_is_the_wire_shape_with_the_order_id_as_request_id() -> None:
    message = open_option(
        "sig.sub",
        balance_id=7,
        active_id=1,
        option_type_id=TURBO,
        direction="PUT",
        expired=1_800_000_060,
        price=Decimal("2.50"),
    )
    assert message == {
        "name": "sendMessage",
        "request_id": "sig.sub",
        "msg": {
            "name": "binary-options.open-option",
            "version": "1.0",
            "body": {
                "user_balance_id": 7,
                "active_id": 1,
                "option_type_id": TURBO,
                "direction": "put",
                "expired": 1_800_000_060,
                "price": Decimal("2.50"),
            },
        },
    }
    # The stake goes out as a JSON number, exactly as written.
    encoded = msgspec.json.Encoder(decimal_format="number").encode(message)
    assert b'"price":2.50' in encoded


def test_option_type_follows_the_expiry_grid_at_purchase_time() -> None:
    expiries = legal_expiries(NOW)
    turbo = [e.at for e in expiries if e.option_type_id == TURBO]
    binary = [e.at for e in expiries if e.option_type_id == BINARY]
    assert all(option_type_for(at, NOW) == TURBO for at in turbo)
    assert all(option_type_for(at, NOW) == BINARY for at in binary)
    # An expiry on no grid is sent as binary and refused by the broker (4103).
    assert option_type_for(int(NOW) + 7, NOW) == BINARY


def test_other_calls_have_their_wire_shapes() -> None:
    assert get_options("r1", 7, limit=5000)["msg"]["body"] == {
        "limit": 1000,
        "instrument_type": "binary,turbo",
        "user_balance_id": 7,
    }
    sub = subscribe_positions("r2", 7, "turbo-option")
    assert sub["name"] == "subscribeMessage"
    assert sub["msg"]["params"]["routingFilters"] == {
        "instrument_type": "turbo-option",
        "user_balance_id": 7,
    }
    assert betinfo("r3", 99, "USD") == {
        "name": "api_game_betinfo",
        "request_id": "r3",
        "msg": {"currency": "USD", "id[0]": 99},
    }
    assert heartbeat_answer("r4", 1000, 1001)["msg"] == {"heartbeatTime": 1000, "userTime": 1001}


def _option_reply(**overrides: object) -> dict[str, object]:
    msg = {
        "user_id": 5,
        "id": 123,
        "refund_value": 0,
        "price": Decimal("10"),
        "exp": 1_800_000_060,
        "created": 1_800_000_010,
        "created_millisecond": 1_800_000_010_123,
        "type": "turbo",
        "act": 1,
        "direction": "call",
        "value": Decimal("1.08"),
        "profit_income": 185,
        "profit_return": 0,
    }
    return {"name": "option", "request_id": "o", "status": 2000, "msg": msg | overrides}


def test_a_booked_option_reads_as_placed_with_its_payout() -> None:
    opened = read_open_option(_option_reply())
    assert opened == OptionOpened(
        option_id=123,
        price=Decimal("10"),
        profit_income=Decimal("185"),
        created=1_800_000_010,
        expired=1_800_000_060,
        value=Decimal("1.08"),
    )
    assert isinstance(opened, OptionOpened)
    placed = opened.placed("order-1")
    assert placed.contract_id == "123"
    assert placed.entry_spot == Decimal("1.08")  # the open value
    assert placed.expiry_at == 1_800_000_060
    assert placed.balance_after is None  # the option reply does not say it
    assert placed.payout == Decimal("18.50")
    assert placed.buy_price == Decimal("10")
    assert not placed.reconciled
    assert payout_of(Decimal("1.33"), Decimal("187")) == Decimal("2.49")


@pytest.mark.parametrize("status", sorted(REJECTION_CODES))
def test_every_failure_status_is_a_refusal_with_its_code(status: int) -> None:
    reply = {
        "name": "option",
        "request_id": "o",
        "status": status,
        "msg": {"message": "broker text", "result": {"request_id": None}},
    }
    assert read_open_option(reply) == OptionRefused(
        code=REJECTION_CODES[status], message="broker text"
    )


def test_named_statuses_and_unknown_ones() -> None:
    assert REJECTION_CODES[STATUS_SUSPENDED] == "ActiveSuspended"
    assert REJECTION_CODES[STATUS_NO_FUNDS] == "InsufficientBalance"
    assert REJECTION_CODES[STATUS_TIME_OVER] == "PurchaseTimeOver"
    assert REJECTION_CODES[STATUS_MARKET_CLOSED] == "MarketIsClosed"
    odd = {"name": "option", "status": 4999, "msg": {"message": "odd"}}
    assert read_open_option(odd) == OptionRefused(code=UNKNOWN_REJECTION, message="odd")
    failed = {"name": "result", "msg": {"success": False, "message": "no"}}
    assert read_open_option(failed) == OptionRefused(code=UNKNOWN_REJECTION, message="no")


def test_a_rate_limited_call_is_told_apart_from_a_refusal() -> None:
    limited = {"name": "result", "msg": {"success": False, "message": "Too many requests"}}
    assert read_open_option(limited) == OptionRefused(
        code=RATE_LIMITED, message="Too many requests"
    )
    assert read_refusal(limited) == read_open_option(limited)
    assert read_refusal({"name": "result", "msg": {"success": True}}) is None
    assert read_refusal({"name": "options", "msg": {"options": []}}) is None


def test_unreadable_buy_replies_are_not_guessed() -> None:
    assert isinstance(
        read_open_option({"name": "result", "msg": {"success": True}}), ReplyUnreadable
    )
    assert isinstance(read_open_option({"name": "profile", "msg": {}}), ReplyUnreadable)
    no_id = _option_reply()
    del no_id["msg"]["id"]  # type: ignore[attr-defined]
    assert isinstance(read_open_option(no_id), ReplyUnreadable)
    assert isinstance(read_open_option(_option_reply(price=float("nan"))), ReplyUnreadable)


def test_get_options_rows_and_matching_by_terms() -> None:
    reply = {
        "name": "options",
        "request_id": "r",
        "msg": {
            "options": [
                {
                    "id": 9,
                    "active_id": 1,
                    "direction": "call",
                    "expired": 1_800_000_060,
                    "price": Decimal("10"),
                    "created": 1_800_000_011,
                    "created_millisecond": 0,
                    "profit_income": 185,
                    "value": 1,
                    "win": "",
                    "win_amount": 0,
                    "exp_value": 0,
                }
            ]
        },
    }
    options = read_options(reply)
    assert isinstance(options, list)
    (option,) = options
    terms = {
        "active_id": 1,
        "direction": "CALL",
        "expired": 1_800_000_060,
        "price": Decimal("10.00"),
        "since": 1_800_000_000.0,
    }
    assert same_terms(option, **terms)  # type: ignore[arg-type]
    for key, other in (
        ("active_id", 2),
        ("direction", "PUT"),
        ("expired", 1_800_000_120),
        ("price", Decimal("11")),
        ("since", 1_800_000_012.0),
    ):
        assert not same_terms(option, **(terms | {key: other}))  # type: ignore[arg-type]
    assert option.opened().placed("o", reconciled=True).reconciled
    assert isinstance(read_options({"name": "options", "msg": {}}), ReplyUnreadable)
    assert isinstance(read_options({"name": "options", "msg": {"options": [{}]}}), ReplyUnreadable)
    assert isinstance(read_options({"name": "other"}), ReplyUnreadable)
    assert read_options({"name": "options", "msg": {"options": []}}) == []
    assert isinstance(option, ListedOption)


@pytest.mark.parametrize(
    ("win", "win_amount", "outcome", "sell_price", "profit"),
    [
        ("win", "18.5", "won", "18.5", "8.5"),
        ("loose", "0", "lost", "0", "-10"),
        ("equal", "10", "lost", "10", "0"),
    ],
)
def test_a_closed_option_settles_with_the_brokers_profit(
    win: str, win_amount: str, outcome: str, sell_price: str, profit: str
) -> None:
    push = {
        "id": 9,
        "win": win,
        "sum": Decimal("10"),
        "win_amount": Decimal(win_amount),
        "value": Decimal("1.1"),
        "exp_value": Decimal("1.2"),
        "exp": 1_800_000_060,
    }
    closed = read_option_closed(push)
    assert isinstance(closed, OptionClosed)
    settlement = closed.settlement()
    assert settlement.contract_id == "9"
    assert settlement.outcome == outcome
    assert settlement.buy_price == Decimal("10")
    assert settlement.sell_price == Decimal(sell_price)
    assert settlement.profit == Decimal(profit)
    assert settlement.sell_time == 1_800_000_060
    # The open and close values are the spots; the expiry is the instant it ended.
    assert (settlement.entry_spot, settlement.exit_spot) == (Decimal("1.1"), Decimal("1.2"))
    assert settlement.expiry_at == 1_800_000_060
    no_spots = read_option_closed({k: v for k, v in push.items() if "value" not in k})
    assert isinstance(no_spots, OptionClosed)
    assert no_spots.settlement().entry_spot is None
    assert no_spots.settlement().exit_spot is None


def test_unreadable_pushes() -> None:
    assert isinstance(read_option_closed(None), ReplyUnreadable)
    assert isinstance(read_option_closed({"id": 1, "win": ""}), ReplyUnreadable)
    assert isinstance(read_option_closed({"win": "win"}), ReplyUnreadable)


def test_betinfo_answers() -> None:
    def answer(state: dict[str, object] | None, ok: bool = True) -> dict[str, object]:
        data = {} if state is None else {"9": state}
        return {
            "name": "api_game_betinfo_result",
            "msg": {"isSuccessful": ok, "result": {"data": data}},
        }

    open_state = {"win": "", "sum": 10, "win_amount": 0, "value": 1, "exp": 60}
    assert read_betinfo(answer(open_state), 9) == StillOpen(option_id=9)
    won = read_betinfo(answer(open_state | {"win": "win", "win_amount": Decimal("18.5")}), 9)
    assert isinstance(won, OptionClosed)
    assert won.settlement().profit == Decimal("8.5")
    assert isinstance(read_betinfo(answer(None, ok=False), 9), UnknownOption)
    assert isinstance(read_betinfo(answer(None), 9), UnknownOption)
    assert isinstance(read_betinfo({"name": "other", "msg": {}}, 9), ReplyUnreadable)


def _order(**overrides: object) -> OrderRequest:
    fields: dict[str, object] = {
        "order_id": "o",
        "signal_id": "s",
        "channel_id": "c",
        "account": BrokerAccount(login="a@b.c", password="pw"),
        "asset": "EURUSD",
        "direction": "CALL",
        "expiry": Expiry(amount=60),
        "expiry_at": 1_800_000_060,
        "stake": Decimal("1"),
        "valid_until": time.time() + 5,
    }
    return OrderRequest(**(fields | overrides))  # type: ignore[arg-type]


def test_order_terms_need_a_listed_asset_and_an_expiry_time() -> None:
    assert terms_of(_order()) == (1, 1_800_000_060)
    assert str(terms_of(_order(asset="R_100"))).startswith("UnsupportedAsset: ")
    assert str(terms_of(_order(expiry_at=None))).startswith("UnsupportedExpiry: ")


def test_accounts_trade_practice_unless_they_chose_real() -> None:
    assert balance_type_of(BrokerAccount()) == "practice"
    assert balance_type_of(BrokerAccount(balance_type="real")) == "real"
    assert balance_type_of(BrokerAccount(balance_type="practice")) == "practice"


def test_sessions_are_per_login_or_per_ssid() -> None:
    by_login = BrokerAccount(login="a@b.c", password="pw")
    assert account_key(by_login) == account_key(BrokerAccount(login="a@b.c", password="new"))
    assert account_key(BrokerAccount(login="a@b.c", token="ssid1")) == "ssid1"
