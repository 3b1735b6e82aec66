"""The API's body rules as pure functions: how money is written, which text names may hold,
and what the strict body decoder refuses."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.api.bodies import decode_body
from apps.api.errors import BadRequest
from apps.api.money import MAX_DIGITS, MAX_PLACES, parse_money
from apps.api.signals.schemas import SignalIn
from apps.api.subscriptions.schemas import SubscriptionCreate
from apps.api.text import check_plain_text

amounts = st.decimals(
    min_value=Decimal(0),
    max_value=Decimal(10**MAX_DIGITS) - 1,
    places=MAX_PLACES,
    allow_nan=False,
    allow_infinity=False,
)


@given(amounts)
def test_every_amount_reads_back_exactly_from_its_canonical_string(amount: Decimal) -> None:
    text = f"{amount:f}"
    assert parse_money(text) == amount


@given(st.integers(min_value=0, max_value=10**MAX_DIGITS - 1))
def test_json_integers_are_amounts(value: int) -> None:
    assert parse_money(value) == value


@pytest.mark.parametrize(
    "written",
    [
        "1_000",
        " 1",
        "1 ",
        " 1 ",
        "01",
        "00.5",
        "+1",
        "-1",
        "1e3",
        "1E3",
        "1.",
        ".5",
        "1.5e1",
        "NaN",
        "Infinity",
        "-0",
        "",
        "1,5",
        "\uff11",
        "0x10",
        "1.000000001",
        "1" * (MAX_DIGITS + 1),
    ],
)
def test_non_canonical_strings_are_refused(written: str) -> None:
    with pytest.raises(ValueError, match=r"^(must be|has too many decimals|is too large)"):
        parse_money(written)


@pytest.mark.parametrize(
    ("written", "words"),
    [
        ("-3", "must be a positive amount, e.g. 10.00"),
        ("-0.5", "must be a positive amount, e.g. 10.00"),
        ("1.000000001", "has too many decimals (at most 8), e.g. 10.00"),
        ("abc", "must be a number, e.g. 10.00"),
        ("", "must be a number, e.g. 10.00"),
    ],
)
def test_negatives_and_too_many_decimals_are_told_apart(written: str, words: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_money(written)
    assert str(refused.value) == words


@pytest.mark.parametrize("value", [True, False, None, -1, 10**MAX_DIGITS, [], {}, 1.5])
def test_other_json_values_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        parse_money(value)


@given(
    st.text(st.characters(exclude_categories=["Cc", "Cf", "Cs", "Zl", "Zp"]), min_size=1).filter(
        str.strip
    )
)
def test_printable_names_are_kept(name: str) -> None:
    check_plain_text("name", name)


@pytest.mark.parametrize(
    "char",
    [
        "\x00",
        "\x1b",
        "\x7f",
        "\x85",
        "\n",
        "\u202a",
        "\u202e",
        "\u2066",
        "\u2069",
        "\u200e",
        "\u200b",
        "\ufeff",
        "\u2028",
        "\u00ad",
    ],
)
def test_control_and_spoofing_characters_are_refused(char: str) -> None:
    with pytest.raises(ValueError, match=f"U\\+{ord(char):04X} at position 3"):
        check_plain_text("name", f"abc{char}def")


def test_descriptions_keep_line_breaks_and_joiners_but_not_overrides() -> None:
    check_plain_text("description", "line one\r\n\tline two 👨\u200d👩\u200d👧", multiline=True)
    with pytest.raises(ValueError, match="description"):
        check_plain_text("description", "paid \u202eon time", multiline=True)
    with pytest.raises(ValueError, match="blank"):
        check_plain_text("name", " \u3000 ")


def _signal(stake: str, expiry: str = "60") -> bytes:
    return (
        f'{{"asset":"R_100","direction":"CALL","expiry_seconds":{expiry},"stake":{stake}}}'
    ).encode()


@pytest.mark.parametrize(("written", "amount"), [('"10"', "10"), ("10.5", "10.5"), ("7", "7")])
def test_a_signal_takes_its_stake_as_a_number_or_a_canonical_string(
    written: str, amount: str
) -> None:
    assert decode_body(_signal(written), SignalIn).stake == Decimal(amount)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_signal('"1_000"'), "stake"),
        (_signal('" 1 "'), "stake"),
        (_signal("1e3"), "stake"),
        (_signal('"10"', expiry='"60"'), "expiry_seconds"),
        (_signal('"10"', expiry="60.0"), "expiry_seconds"),
        (_signal('"10"', expiry="true"), "expiry_seconds"),
    ],
)
def test_loose_numbers_are_refused_naming_the_field(body: bytes, field: str) -> None:
    with pytest.raises(BadRequest) as refused:
        decode_body(body, SignalIn)
    assert refused.value.code == "validation_failed"
    assert refused.value.details[0]["key"] == field


def test_nested_money_fields_follow_the_same_rule() -> None:
    body = b'{"broker_account_id":"a","stake_mode":"fixed","stake":"5","max_stake":"2_0"}'
    with pytest.raises(BadRequest) as refused:
        decode_body(body, SubscriptionCreate)
    assert refused.value.details[0]["key"] == "max_stake"


@pytest.mark.parametrize(
    "body", [b'{"asset":"\xff\xfe"}', b"\xc3\x28", b"{not json", b'"\\ud800"', b""]
)
def test_undecodable_bodies_are_plain_400s(body: bytes) -> None:
    with pytest.raises(BadRequest) as refused:
        decode_body(body, SignalIn)
    assert refused.value.code == "malformed_body"
    assert refused.value.status_code == 400
