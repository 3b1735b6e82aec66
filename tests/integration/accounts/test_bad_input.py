"""Malformed, hostile or absurd bodies get a 4xx with the one error body — never a 500."""

from __future__ import annotations

from typing import Any

from tests.integration.accounts.conftest import Api

HUGE = "x" * 200_000
LONG = "y" * 5_000


def subscription(**overrides: Any) -> dict[str, Any]:
    return {
        "broker_account_id": "{account}",
        "stake_mode": "fixed",
        "stake": "5",
        "max_stake": "20",
        **overrides,
    }


async def test_bad_input_is_a_4xx_with_the_error_body(api: Api) -> None:
    provider = await api.user("provider", "bp")
    subscriber = await api.user("subscriber", "bs")
    channel_id = await api.channel(provider)
    account_id = await api.broker_account(subscriber)
    subscription_id = await api.subscribe(subscriber, channel_id, account_id)
    subscribe_url = f"/api/v1/channels/{channel_id}/subscriptions"

    cases: list[tuple[str, str, Any, Any]] = [
        # (method, url, json body or raw bytes, who)
        ("POST", "/api/v1/auth/register", {}, None),
        ("POST", "/api/v1/auth/register", {"email": "a@b.c", "password": "longenough"}, None),
        (
            "POST",
            "/api/v1/auth/register",
            {
                "email": "not-an-email",
                "password": "longenough",
                "display_name": "x",
                "account_type": "provider",
            },
            None,
        ),
        (
            "POST",
            "/api/v1/auth/register",
            {
                "email": "x@y.test",
                "password": "longenough",
                "display_name": "x",
                "account_type": "admin",
            },
            None,
        ),
        (
            "POST",
            "/api/v1/auth/register",
            {
                "email": "x@y.test",
                "password": LONG,
                "display_name": "x",
                "account_type": "provider",
            },
            None,
        ),
        ("POST", "/api/v1/auth/login", {"email": 12, "password": None}, None),
        ("POST", "/api/v1/auth/login", b"{not json", None),
        ("POST", "/api/v1/auth/login", {"email": HUGE, "password": "x"}, None),
        ("POST", "/api/v1/auth/refresh", {"refresh_token": 5}, None),
        ("POST", "/api/v1/channels", {"name": "x"}, provider),
        (
            "POST",
            "/api/v1/channels",
            {"name": LONG, "plan": {"price": "1", "period_days": 7}},
            provider,
        ),
        (
            "POST",
            "/api/v1/channels",
            {"name": "x", "plan": {"price": "-1", "period_days": 7}},
            provider,
        ),
        (
            "POST",
            "/api/v1/channels",
            {"name": "x", "plan": {"price": "NaN", "period_days": 7}},
            provider,
        ),
        (
            "POST",
            "/api/v1/channels",
            {"name": "x", "plan": {"price": "1", "period_days": 0}},
            provider,
        ),
        (
            "POST",
            "/api/v1/channels",
            {"name": "x", "plan": {"price": "1e40", "period_days": 7}},
            provider,
        ),
        (
            "POST",
            "/api/v1/channels",
            {"name": "x", "plan": {"price": "abc", "period_days": 7}},
            provider,
        ),
        ("PATCH", f"/api/v1/channels/{channel_id}", {"plan": "free"}, provider),
        ("PATCH", f"/api/v1/channels/{channel_id}", {"owner_id": subscriber.id}, provider),
        ("POST", f"/api/v1/channels/{channel_id}/delegates", {"email": "nobody@x.test"}, provider),
        ("GET", "/api/v1/channels?limit=100000", None, None),
        ("GET", "/api/v1/channels?limit=abc", None, None),
        ("GET", "/api/v1/channels/does-not-exist", None, None),
        ("GET", "/api/v1/nowhere", None, None),
        ("PUT", "/api/v1/channels", {}, provider),
        (
            "POST",
            "/api/v1/broker-accounts",
            {"kind": "binance", "label": "x", "credentials": {"token": "t"}},
            subscriber,
        ),
        (
            "POST",
            "/api/v1/broker-accounts",
            {"kind": "deriv", "label": "x", "credentials": {}},
            subscriber,
        ),
        (
            "POST",
            "/api/v1/broker-accounts",
            {"kind": "deriv", "label": "x", "credentials": {"token": "bad token!"}},
            subscriber,
        ),
        (
            "POST",
            "/api/v1/broker-accounts",
            {"kind": "iqoption", "label": "x", "credentials": {"token": "t"}},
            subscriber,
        ),
        (
            "POST",
            "/api/v1/broker-accounts",
            {"kind": "deriv", "label": HUGE, "credentials": {"token": "t"}},
            subscriber,
        ),
        ("POST", subscribe_url, subscription(stake_mode="martingale"), subscriber),
        ("POST", subscribe_url, subscription(stake="-5"), subscriber),
        ("POST", subscribe_url, subscription(stake="0"), subscriber),
        ("POST", subscribe_url, subscription(stake="1e30", max_stake="1e31"), subscriber),
        ("POST", subscribe_url, subscription(stake="50", max_stake="20"), subscriber),
        ("POST", subscribe_url, subscription(stake_mode="percent", stake="250"), subscriber),
        ("POST", subscribe_url, subscription(stake="Infinity"), subscriber),
        ("POST", subscribe_url, subscription(stake=5.5), subscriber),
        ("POST", subscribe_url, subscription(stake="0.000000001"), subscriber),
        ("POST", subscribe_url, subscription(max_trades_per_day=0), subscriber),
        ("POST", subscribe_url, subscription(max_trades_per_day="many"), subscriber),
        ("POST", subscribe_url, subscription(daily_loss_limit="-1"), subscriber),
        ("POST", subscribe_url, subscription(assets=["R_100; DROP"]), subscriber),
        ("POST", subscribe_url, subscription(assets=[f"A{i}" for i in range(500)]), subscriber),
        ("POST", subscribe_url, subscription(broker_account_id="someone-elses"), subscriber),
        ("POST", subscribe_url, subscription(paused="yes"), subscriber),
        ("POST", subscribe_url, subscription(), subscriber),  # duplicate → 409
        ("PATCH", f"/api/v1/subscriptions/{subscription_id}", {"stake": "100"}, subscriber),
        ("PATCH", f"/api/v1/subscriptions/{subscription_id}", {"stake_mode": None}, subscriber),
        ("PATCH", f"/api/v1/subscriptions/{subscription_id}", {"expires_at": 0}, subscriber),
        ("POST", subscribe_url, HUGE.encode(), subscriber),
    ]
    failures = []
    for method, url, body, who in cases:
        headers = dict(who.headers) if who else {}
        kwargs: dict[str, Any] = {}
        if isinstance(body, bytes):
            headers["Content-Type"] = "application/json"
            kwargs["content"] = body
        elif body is not None:
            if isinstance(body, dict) and body.get("broker_account_id") == "{account}":
                body = {**body, "broker_account_id": account_id}
            kwargs["json"] = body
        response = await api.client.request(method, url, headers=headers, **kwargs)
        try:
            error = response.json()["error"]
            ok = 400 <= response.status_code < 500 and {"code", "message", "details"} == set(error)
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            failures.append(
                (method, url, str(body)[:80], response.status_code, response.text[:200])
            )
    assert failures == []


async def test_validation_errors_name_the_field(api: Api) -> None:
    provider = await api.user("provider", "field")
    response = await api.client.post(
        "/api/v1/channels",
        json={"name": "x", "plan": {"price": "-3", "period_days": 7}},
        headers=provider.headers,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert "price" in str(error)
