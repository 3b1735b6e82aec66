"""Pure rules of the accounts domain: risk limits, sealing, routing records, permissions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.api.auth.guards import Principal, can_manage_channel, can_signal_channel
from apps.api.auth.principals import UserFacts
from apps.api.auth.tokens import TokenClaims
from apps.api.models import Channel
from apps.api.subscriptions.risk import check_risk
from apps.core.credentials import BrokerCredentials, CredentialsCipher, CredentialsError
from apps.core.routing import RoutingRecord, pack_record, unpack_record

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _user(uid: str, *, admin: bool = False) -> Principal:
    facts = UserFacts(id=uid, account_type="provider", is_admin=admin)
    return Principal(facts, TokenClaims(uid, "j", "access", 0, 1))


def test_only_owner_and_admin_manage_but_delegates_may_signal() -> None:
    channel = Channel(
        id="c1",
        owner_id="owner",
        name="c",
        price=Decimal(1),
        period_days=7,
        delegates=["trader"],
        created_at=NOW,
    )
    owner, trader, stranger, admin = (
        _user("owner"),
        _user("trader"),
        _user("stranger"),
        _user("root", admin=True),
    )
    assert [can_manage_channel(p, channel) for p in (owner, trader, stranger, admin)] == [
        True,
        False,
        False,
        True,
    ]
    assert [can_signal_channel(p, channel) for p in (owner, trader, stranger, admin)] == [
        True,
        True,
        False,
        True,
    ]


@pytest.mark.parametrize(
    ("mode", "stake", "max_stake", "loss"),
    [
        ("fixed", "30", "20", None),
        ("fixed", "0", "20", None),
        ("percent", "101", "20", None),
        ("multiplier", "1000", "20", None),
        ("fixed", "5", "-1", None),
        ("fixed", "5", "20", "0"),
        ("fixed", "NaN", "20", None),
        ("fixed", "1.000000001", "20", None),
    ],
)
def test_risk_settings_that_make_no_sense_are_refused(
    mode: str, stake: str, max_stake: str, loss: str | None
) -> None:
    with pytest.raises(ValueError):
        check_risk(mode, Decimal(stake), Decimal(max_stake), Decimal(loss) if loss else None)


@given(
    stake=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100), places=2),
    mode=st.sampled_from(["fixed", "multiplier", "percent"]),
)
def test_sane_risk_settings_pass(stake: Decimal, mode: str) -> None:
    check_risk(mode, stake, Decimal(100), Decimal(50))


def test_sealed_credentials_open_only_on_their_own_account() -> None:
    cipher = CredentialsCipher({"c1": b"k" * 32}, "c1")
    secret = BrokerCredentials(token="tok-123")
    sealed = cipher.seal("acct1", "deriv", secret)
    assert b"tok-123" not in sealed.ciphertext
    assert cipher.open("acct1", "deriv", sealed) == secret
    with pytest.raises(CredentialsError):
        cipher.open("acct2", "deriv", sealed)  # ciphertext copied onto another account
    rotated = CredentialsCipher({"c1": b"k" * 32, "c2": b"n" * 32}, "c2")
    assert rotated.open("acct1", "deriv", sealed) == secret  # old key still opens old rows
    assert "tok-123" not in repr(secret)


@given(
    stake=st.decimals(allow_nan=False, allow_infinity=False, places=4),
    assets=st.lists(st.text(min_size=1, max_size=8), max_size=4),
    limit=st.none() | st.integers(min_value=1, max_value=10_000),
)
def test_routing_records_survive_msgpack_without_losing_decimals(
    stake: Decimal, assets: list[str], limit: int | None
) -> None:
    record = RoutingRecord(
        subscription_id="s",
        channel_id="c",
        subscriber_id="u",
        broker_kind="deriv",
        broker_account_id="a",
        credentials_ref="a",
        currency="USD",
        stake_mode="fixed",
        stake=stake,
        max_stake=stake,
        max_trades_per_day=limit,
        daily_loss_limit=None,
        assets=tuple(assets),
        expires_at=1_800_000_000,
    )
    again = unpack_record(pack_record(record))
    assert again == record
    assert str(again.stake) == str(stake)
