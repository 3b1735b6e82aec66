"""apps.core.brokers.iqoption: legal expiries, the expiry the router chooses, and the
readers of the login answer and of the WebSocket's ``profile``."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.core.brokers.iqoption import (
    BINARY,
    BINARY_GRID_SECONDS,
    BINARY_MIN_AHEAD_SECONDS,
    PURCHASE_CUTOFF_SECONDS,
    TURBO,
    TURBO_BOUNDARIES,
    Balance,
    LegalExpiry,
    LoggedIn,
    LoginLimited,
    LoginRefused,
    LoginUnreadable,
    NoLegalExpiry,
    Profile,
    ProfileUnreadable,
    SsidRefused,
    TwoFactorRequired,
    choose_expiry,
    legal_expiries,
    purchasable,
    read_login,
    read_profile,
)

HOUR = 1_800_000_000 - 1_800_000_000 % 3600  # a whole hour, so on both grids

instants = st.one_of(
    st.floats(min_value=1.7e9, max_value=1.9e9, allow_nan=False, allow_infinity=False),
    # exact boundaries and the instants around the purchase cut-off
    st.builds(
        lambda minute, offset: minute * 60 + offset,
        st.integers(min_value=28_000_000, max_value=31_000_000),
        st.sampled_from([0.0, 0.001, 29.0, 29.999, 30.0, 30.001, 31.0, 59.999]),
    ),
)


# --- legal expiries -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds_into_minute", "first_turbo"),
    [
        (0.0, 60),  # on a boundary: the next minute has 60 s left
        (10.0, 60),
        (29.0, 60),  # 31 s left: still sold
        (29.999, 60),
        (30.0, 120),  # 30 s left: the cut-off has passed, the minute is skipped
        (31.0, 120),
        (59.5, 120),
    ],
)
def test_turbo_starts_at_the_first_minute_with_more_than_the_cutoff_left(
    seconds_into_minute: float, first_turbo: int
) -> None:
    now = HOUR + seconds_into_minute
    turbo = [e for e in legal_expiries(now) if e.option_type_id == TURBO]
    assert [e.at for e in turbo] == [HOUR + first_turbo + 60 * i for i in range(5)]


def test_binary_expiries_are_on_the_quarter_hour_grid_from_five_minutes_ahead() -> None:
    now = HOUR + 11 * 60 + 5  # 11:05 into the hour: earliest binary 16:05 → the 30th minute
    binary = [e.at - HOUR for e in legal_expiries(now) if e.option_type_id == BINARY]
    assert binary == [30 * 60 + 15 * 60 * i for i in range(8)]


def test_a_boundary_that_is_both_turbo_and_binary_is_listed_once_as_turbo() -> None:
    now = HOUR + 10 * 60  # turbo ends 11..15 min; the first binary boundary is the 15th
    expiries = legal_expiries(now)
    at_quarter = [e for e in expiries if e.at == HOUR + 15 * 60]
    assert at_quarter == [LegalExpiry(at=HOUR + 15 * 60, option_type_id=TURBO)]
    assert len([e for e in expiries if e.option_type_id == BINARY]) == 7


@given(instants)
def test_legal_expiries_are_whole_minutes_soonest_first_and_all_purchasable(now: float) -> None:
    expiries = legal_expiries(now)
    ats = [e.at for e in expiries]
    assert ats == sorted(set(ats))  # strictly increasing: no duplicates
    assert all(at % 60 == 0 and purchasable(at, now) for at in ats)
    turbo = [e.at for e in expiries if e.option_type_id == TURBO]
    assert len(turbo) == TURBO_BOUNDARIES
    assert turbo == list(range(turbo[0], turbo[0] + 60 * TURBO_BOUNDARIES, 60))
    # the first turbo boundary is the earliest whole minute still sold
    assert turbo[0] - 60 - now <= PURCHASE_CUTOFF_SECONDS
    for e in expiries:
        if e.option_type_id == BINARY:
            assert e.at % BINARY_GRID_SECONDS == 0
            assert e.at >= now + BINARY_MIN_AHEAD_SECONDS
            assert e.at not in turbo


def test_purchasable_means_more_than_the_cutoff_left() -> None:
    assert purchasable(HOUR + 60, HOUR + 29.9)
    assert not purchasable(HOUR + 60, HOUR + 30)
    assert not purchasable(HOUR + 60, HOUR + 61)


# --- choose_expiry --------------------------------------------------------------------


def test_an_exact_whole_minute_is_chosen_as_is() -> None:
    assert choose_expiry(HOUR, 60, 0) == LegalExpiry(at=HOUR + 60, option_type_id=TURBO)
    assert choose_expiry(HOUR, 3600, 0) == LegalExpiry(at=HOUR + 3600, option_type_id=BINARY)


def test_the_nearest_legal_expiry_is_chosen() -> None:
    # wanted HOUR + 70: HOUR + 60 is 10 s off, HOUR + 120 is 50 s off
    assert choose_expiry(HOUR + 10, 60, 30) == LegalExpiry(at=HOUR + 60, option_type_id=TURBO)
    # wanted HOUR + 105: HOUR + 120 is nearer
    assert choose_expiry(HOUR + 45, 60, 30) == LegalExpiry(at=HOUR + 120, option_type_id=TURBO)


def test_a_tie_takes_the_earlier_expiry() -> None:
    # wanted HOUR + 90, halfway between HOUR + 60 and HOUR + 120
    assert choose_expiry(HOUR + 20, 70, 30) == LegalExpiry(at=HOUR + 60, option_type_id=TURBO)


def test_nothing_within_the_tolerance_is_a_reason_not_a_guess() -> None:
    assert choose_expiry(HOUR, 90, 30) == LegalExpiry(at=HOUR + 60, option_type_id=TURBO)
    refused = choose_expiry(HOUR, 90, 29)
    assert isinstance(refused, NoLegalExpiry)
    assert refused.reason == (
        "IQ Option has no expiry within 29s of 90s: the nearest it sells ends 60s after the signal"
    )
    # 10 minutes: the last turbo (5 min) and the next quarter (15 min) are equally far
    far = choose_expiry(HOUR, 600, 30)
    assert isinstance(far, NoLegalExpiry) and "300s after the signal" in far.reason


@given(instants, st.integers(min_value=15, max_value=86_400), st.integers(0, 300))
def test_a_chosen_expiry_is_legal_and_within_tolerance(
    now: float, seconds: int, tolerance: int
) -> None:
    chosen = choose_expiry(now, seconds, tolerance)
    legal = legal_expiries(now)
    wanted = now + seconds
    nearest = min(abs(e.at - wanted) for e in legal)
    match chosen:
        case LegalExpiry():
            assert chosen in legal
            assert abs(chosen.at - wanted) == nearest <= tolerance
        case NoLegalExpiry():
            assert nearest > tolerance


# --- login ----------------------------------------------------------------------------


def test_a_successful_login_yields_its_ssid() -> None:
    body = {"code": "success", "data": {"ssid": "ab" * 16}}
    assert read_login(200, body) == LoggedIn(ssid="ab" * 16)


def test_invalid_credentials_are_refused_with_the_brokers_words() -> None:
    body = {
        "code": "invalid_credentials",
        "errors": [{"code": 202, "title": "Invalid credentials"}],
    }
    assert read_login(403, body) == LoginRefused(code="202", message="Invalid credentials")


def test_a_login_limit_says_how_long_to_wait() -> None:
    body = {"data": {"ttl": 42}, "errors": [{"code": 301, "title": "Login limit exceeded"}]}
    assert read_login(429, body) == LoginLimited(ttl=42.0, message="Login limit exceeded")
    assert read_login(429, {"errors": []}) == LoginLimited(ttl=60.0, message="login limit exceeded")
    assert read_login(429, {"data": {"ttl": "soon"}}) == LoginLimited(
        ttl=60.0, message="login limit exceeded"
    )
    assert read_login(429, {"data": {"ttl": -5}}) == LoginLimited(
        ttl=0.0, message="login limit exceeded"
    )


def test_a_two_factor_account_asks_for_a_code() -> None:
    body = {"code": "verify", "method": "push", "token": "ff" * 8}
    assert read_login(200, body) == TwoFactorRequired(method="push")


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (502, None, "the broker's login answered HTTP 502"),
        (200, None, "the broker's login answered HTTP 200 without JSON"),
        (404, {"message": "not found"}, "the broker's login answered HTTP 404"),
        (200, {"code": "success", "data": {}}, "the broker's login answer has no ssid"),
        (200, {"code": "success", "data": {"ssid": ""}}, "the broker's login answer has no ssid"),
        (200, ["ssid"], "the broker's login answered HTTP 200 without JSON"),
    ],
)
def test_anything_else_is_unreadable_with_a_reason(status: int, body: object, reason: str) -> None:
    assert read_login(status, body) == LoginUnreadable(reason=reason)


# --- profile --------------------------------------------------------------------------


def test_a_profile_lists_its_balances_without_passing_through_a_float() -> None:
    msg = {
        "user_id": 7,
        "balance_id": 11,
        "currency": "USD",
        "balances": [
            {"id": 11, "type": 1, "amount": 0.1, "currency": "USD"},
            {"id": 12, "type": 4, "amount": "10000.55", "currency": "USD"},
        ],
    }
    profile = read_profile(msg)
    assert profile == Profile(
        user_id=7,
        balances=(
            Balance(id=11, type=1, amount=Decimal("0.1"), currency="USD"),
            Balance(id=12, type=4, amount=Decimal("10000.55"), currency="USD"),
        ),
    )
    assert isinstance(profile, Profile)
    assert profile.balance("real") == profile.balances[0]
    assert profile.balance("practice") == profile.balances[1]
    assert Profile(user_id=7, balances=()).balance("practice") is None


@pytest.mark.parametrize("msg", [False, None])
def test_a_refused_ssid_is_told_apart(msg: object) -> None:
    assert read_profile(msg) == SsidRefused()


@pytest.mark.parametrize(
    "msg",
    [
        "nope",
        {"user_id": 7},
        {"user_id": 7, "balances": "none"},
        {"user_id": 7, "balances": ["x"]},
        {"user_id": 7, "balances": [{"type": 1, "amount": 1}]},
        {"user_id": 7, "balances": [{"id": 1, "type": 1, "amount": "lots"}]},
        {"user_id": 7, "balances": [{"id": 1, "type": 1, "amount": "NaN"}]},
        {"user_id": 7, "balances": [{"id": 1, "type": 1, "amount": "Infinity"}]},
        {"user_id": "me", "balances": []},
    ],
)
def test_an_unreadable_profile_is_a_reason_not_a_crash(msg: object) -> None:
    assert isinstance(read_profile(msg), ProfileUnreadable)
