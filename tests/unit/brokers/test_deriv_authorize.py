"""Deriv's authorize answer read as a value: the account, the refusal, or why unreadable."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from apps.core.brokers.deriv import (
    Authorized,
    AuthorizeRefused,
    AuthorizeUnreadable,
    authorize_request,
    read_authorize,
)


def test_the_request_names_the_token() -> None:
    assert authorize_request("tok") == {"authorize": "tok"}


@pytest.mark.parametrize(
    ("balance", "expected"),
    [(Decimal("10.5"), Decimal("10.5")), ("10.50", Decimal("10.50")), (7, Decimal(7))],
)
def test_an_account_is_read_with_its_balance_never_through_a_float(
    balance: Any, expected: Decimal
) -> None:
    reply = {"authorize": {"loginid": "CR1", "currency": "USD", "balance": balance}}
    assert read_authorize(reply) == Authorized(loginid="CR1", currency="USD", balance=expected)


@pytest.mark.parametrize(
    ("code", "token_refused"),
    [("InvalidToken", True), ("InputValidationFailed", True), ("RateLimit", False)],
)
def test_an_error_is_a_refusal_and_says_whether_the_token_is_refused(
    code: str, token_refused: bool
) -> None:
    answer = read_authorize({"error": {"code": code, "message": "no"}})
    assert answer == AuthorizeRefused(code=code, message="no")
    assert isinstance(answer, AuthorizeRefused)
    assert answer.token_refused is token_refused


@pytest.mark.parametrize(
    "reply",
    [
        {"msg_type": "authorize"},
        {"error": "boom"},
        {"authorize": {"loginid": "CR1", "balance": "lots"}},
        {"authorize": {"loginid": "CR1", "balance": "NaN"}},
    ],
)
def test_anything_else_is_unreadable(reply: dict[str, Any]) -> None:
    assert isinstance(read_authorize(reply), AuthorizeUnreadable)


def test_every_connection_names_the_app_id_the_api_verification_too() -> None:
    from apps.core.brokers.deriv import endpoint_url

    assert endpoint_url("wss://ws.derivws.com/websockets/v3", 1234) == (
        "wss://ws.derivws.com/websockets/v3?app_id=1234&l=EN"
    )
    assert endpoint_url("ws://sim/websockets/v3?x=1", 7).endswith("?x=1&app_id=7&l=EN")
