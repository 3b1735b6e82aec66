"""Malformed, hostile or absurd bodies get a 4xx with the one error body — never a 500."""

from __future__ import annotations

from typing import Any

from tests.fixtures.live_api import Api

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


async def test_every_json_endpoint_answers_an_undecodable_body_with_a_plain_400(api: Api) -> None:
    provider = await api.user("provider", "utf")
    schema = (await api.client.get("/schema/openapi.json")).json()
    posts = [
        (method.upper(), path.replace("{", "").replace("}", ""))
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    ]
    assert len(posts) >= 9
    answers = {}
    for method, path in posts:
        for body in (b'{"email": "\xff\xfe@x.test", "password": "p"}', b'{"name": "\xc3\x28"}'):
            response = await api.client.request(
                method,
                path,
                content=body,
                headers={**provider.headers, "Content-Type": "application/json"},
            )
            answers[method, path, body] = (response.status_code, response.json()["error"])
    assert {key: (status, error["code"]) for key, (status, error) in answers.items()} == {
        key: (400, "malformed_body") for key in answers
    }
    assert all(
        error["message"] == "the request body is not valid UTF-8" for _, error in answers.values()
    )


async def test_numbers_must_be_written_plainly(api: Api) -> None:
    provider = await api.user("provider", "num")
    subscriber = await api.user("subscriber", "nums")
    channel_id = await api.channel(provider)
    account_id = await api.broker_account(subscriber)
    signal = {"asset": "R_100", "direction": "CALL", "expiry_seconds": 60, "stake": "10"}
    signals_url = f"/api/v1/channels/{channel_id}/signals"
    refused = [
        ("POST", signals_url, {**signal, "stake": "1_000"}, provider, "stake"),
        ("POST", signals_url, {**signal, "stake": " 1 "}, provider, "stake"),
        ("POST", signals_url, {**signal, "stake": "1e3"}, provider, "stake"),
        ("POST", signals_url, {**signal, "expiry_seconds": "60"}, provider, "expiry_seconds"),
        (
            "POST",
            "/api/v1/channels",
            {"name": "x", "plan": {"price": " 1 ", "period_days": 7}},
            provider,
            "price",
        ),
        (
            "POST",
            "/api/v1/channels",
            {"name": "x", "plan": {"price": "1", "period_days": "7"}},
            provider,
            "period_days",
        ),
        (
            "POST",
            f"/api/v1/channels/{channel_id}/subscriptions",
            subscription(broker_account_id=account_id, max_stake="01"),
            subscriber,
            "max_stake",
        ),
        (
            "POST",
            f"/api/v1/channels/{channel_id}/subscriptions",
            subscription(broker_account_id=account_id, daily_loss_limit="+5"),
            subscriber,
            "daily_loss_limit",
        ),
    ]
    for method, url, body, who, field in refused:
        response = await api.client.request(method, url, json=body, headers=who.headers)
        assert response.status_code == 400, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_failed"
        assert field in error["message"], error
    # The same amounts written plainly are taken, as strings and as JSON numbers.
    response = await api.client.post(
        f"/api/v1/channels/{channel_id}/subscriptions",
        json=subscription(broker_account_id=account_id, stake=5.5, max_stake="20.25"),
        headers=subscriber.headers,
    )
    assert response.status_code == 201, response.text
    assert (response.json()["stake"], response.json()["max_stake"]) == ("5.5", "20.25")


async def test_names_refuse_control_and_text_direction_characters(api: Api) -> None:
    provider = await api.user("provider", "nm")
    subscriber = await api.user("subscriber", "nms")
    channel_id = await api.channel(provider)
    plan = {"price": "1", "period_days": 7}
    cases = [
        ("POST", "/api/v1/channels", {"name": "Gold\x00", "plan": plan}, provider, "name"),
        ("POST", "/api/v1/channels", {"name": "Loss\u202eniW", "plan": plan}, provider, "name"),
        (
            "POST",
            "/api/v1/channels",
            {"name": "ok", "description": "a\u2066b", "plan": plan},
            provider,
            "description",
        ),
        ("PATCH", f"/api/v1/channels/{channel_id}", {"name": "\u200bAlpha"}, provider, "name"),
        (
            "POST",
            "/api/v1/auth/register",
            {
                "email": "spoof@example.test",
                "password": "longenough",
                "display_name": "admin\u202e",
                "account_type": "provider",
            },
            None,
            "display_name",
        ),
        (
            "POST",
            "/api/v1/broker-accounts",
            {"kind": "deriv", "label": "main\x1b[31m", "credentials": {"token": "t"}},
            subscriber,
            "label",
        ),
    ]
    for method, url, body, who, field in cases:
        headers = who.headers if who else {}
        response = await api.client.request(method, url, json=body, headers=headers)
        assert response.status_code == 400, (body, response.text)
        message = response.json()["error"]["message"]
        assert f"{field} must not contain control or invisible formatting characters" in message
    renamed = await api.client.patch(
        f"/api/v1/channels/{channel_id}",
        json={"name": "Ünïcode 👨\u200d👩\u200d👧"},
        headers=provider.headers,
    )
    assert renamed.status_code == 200, renamed.text
