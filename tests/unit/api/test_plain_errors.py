"""Validation failures read as plain words about the field, with its key for programs."""

from __future__ import annotations

import pytest

from apps.api.auth.schemas import RegisterRequest
from apps.api.bodies import decode_body
from apps.api.brokers.schemas import BrokerAccountCreate
from apps.api.channels.schemas import ChannelCreate
from apps.api.errors import BadRequest, plain_validation
from apps.api.subscriptions.schemas import SubscriptionCreate

USER = '"password":"longenough","display_name":"x","account_type":"subscriber"'
SUB = '"broker_account_id":"a","stake_mode":"fixed"'


@pytest.mark.parametrize(
    ("kind", "body", "message", "key"),
    [
        (RegisterRequest, f'{{"email":"bad",{USER}}}', "Enter a valid e-mail address", "email"),
        (
            RegisterRequest,
            '{"email":"a@b.co","password":"short","display_name":"x","account_type":"subscriber"}',
            "Password must be at least 8 characters",
            "password",
        ),
        (
            RegisterRequest,
            '{"email":"a@b.co","password":"longenough","display_name":"x","account_type":"x"}',
            "Account type must be provider or subscriber",
            "account_type",
        ),
        (
            RegisterRequest,
            '{"email":"a@b.co","password":"longenough","account_type":"provider"}',
            "Display name is required",
            "display_name",
        ),
        (
            SubscriptionCreate,
            f'{{{SUB},"stake":"-3","max_stake":"10"}}',
            "Stake must be a positive amount, e.g. 10.00",
            "stake",
        ),
        (
            SubscriptionCreate,
            f'{{{SUB},"stake":"0","max_stake":"10"}}',
            "Stake must be a positive amount, e.g. 10.00",
            "stake",
        ),
        (
            SubscriptionCreate,
            f'{{{SUB},"stake":"1.123456789","max_stake":"10"}}',
            "Stake has too many decimals (at most 8), e.g. 10.00",
            "stake",
        ),
        (
            SubscriptionCreate,
            f'{{{SUB},"stake":"1","max_stake":"10","daily_loss_limit":"ten"}}',
            "Daily loss limit must be a number, e.g. 10.00",
            "daily_loss_limit",
        ),
        (
            SubscriptionCreate,
            f'{{{SUB},"stake":"30","max_stake":"10"}}',
            "Stake must not exceed maximum stake",
            "stake",
        ),
        (
            SubscriptionCreate,
            f'{{{SUB},"stake":"1","max_stake":"10","max_trades_per_day":0}}',
            "Maximum trades per day must be at least 1",
            "max_trades_per_day",
        ),
        (
            SubscriptionCreate,
            f'{{{SUB},"stake":"1","max_stake":"10","paused":"yes"}}',
            "Paused must be true or false",
            "paused",
        ),
        (
            BrokerAccountCreate,
            '{"kind":"deriv","label":"m","credentials":{"token":"a b"}}',
            "Token may hold only letters, digits, _ and - (at most 128)",
            "credentials.token",
        ),
        (
            BrokerAccountCreate,
            '{"kind":"ftx","label":"m","credentials":{"token":"ab"}}',
            "Broker must be deriv or iqoption",
            "kind",
        ),
        (
            BrokerAccountCreate,
            '{"kind":"deriv","label":"m","credentials":{"token":"ab","pin":1}}',
            "'pin' is not a field this request takes",
            "credentials.pin",
        ),
        (
            ChannelCreate,
            '{"name":"x","plan":{"price":"-3","period_days":7}}',
            "Price must be a positive amount, e.g. 10.00",
            "plan.price",
        ),
        (
            ChannelCreate,
            '{"name":"x","plan":{"price":"1","period_days":"7"}}',
            "Period (days) must be a whole number",
            "plan.period_days",
        ),
        (ChannelCreate, "[]", "The request body must be an object", None),
    ],
)
def test_a_body_that_does_not_fit_is_told_in_words(
    kind: type, body: str, message: str, key: str | None
) -> None:
    with pytest.raises(BadRequest) as refused:
        decode_body(body.encode(), kind)
    assert refused.value.code == "validation_failed"
    assert refused.value.message == message
    assert refused.value.details == [{"key": key, "message": message, "source": "body"}]


def test_a_message_no_rule_knows_is_kept_as_it_is() -> None:
    assert plain_validation("Something else - at `$.x`") == ("Something else", "x")
