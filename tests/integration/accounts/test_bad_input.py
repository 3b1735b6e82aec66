"""Malformed, hostile or absurd bodies get a 4xx with the one error body — never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from apps.api.app import create_app
from apps.api.errors import field_label
from apps.core.db import connect_db
from tests.conftest import Servers, namespaced_settings, new_namespace
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import Api, SimDesk, User
from tests.integration.accounts.conftest import deriv_sim_in_thread, with_deriv

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


@dataclass
class Shared:
    """One API, its users and their objects, set up once for every bad-input case (each
    case is refused, so none changes what the next one finds)."""

    api: Api
    users: dict[str, User]
    ids: dict[str, str]  # what the URLs and bodies name: channel, subscription, account


@pytest.fixture(scope="module")
async def shared(
    servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Shared]:
    data_dir = tmp_path_factory.mktemp("bad-input")
    with deriv_sim_in_thread() as serving:
        async with (
            httpx.AsyncClient(base_url=serving.admin_url, timeout=10) as admin,
            namespaced_settings(servers, new_namespace(), data_dir) as base,
        ):
            broker = SimHandle(serving, admin)
            settings = with_deriv(base, broker)
            mongo, db = connect_db(settings.mongodb_uri, settings.mongodb_database)
            try:
                async with AsyncTestClient(app=create_app(settings)) as client:
                    api = Api(client, db, SimDesk(broker))
                    provider = await api.user("provider", "bp")
                    subscriber = await api.user("subscriber", "bs")
                    channel_id = await api.channel(provider)
                    account_id = await api.broker_account(subscriber)
                    subscription_id = await api.subscribe(subscriber, channel_id, account_id)
                    yield Shared(
                        api,
                        {"provider": provider, "subscriber": subscriber},
                        {
                            "channel": channel_id,
                            "subscription": subscription_id,
                            "account": account_id,
                            "subscriber_id": subscriber.id,
                        },
                    )
            finally:
                mongo.close()


SUBSCRIBE = "/api/v1/channels/{channel}/subscriptions"
REGISTRATION = {"password": "longenough", "display_name": "x", "account_type": "provider"}

# (method, url, json body or raw bytes, who): URLs and bodies name the shared objects as
# {channel}, {subscription}, {account}, {subscriber_id}.
BAD_INPUT = [
    pytest.param("POST", "/api/v1/auth/register", {}, None, id="register-empty"),
    pytest.param(
        "POST",
        "/api/v1/auth/register",
        {"email": "a@b.c", "password": "longenough"},
        None,
        id="register-missing-fields",
    ),
    pytest.param(
        "POST",
        "/api/v1/auth/register",
        {**REGISTRATION, "email": "not-an-email"},
        None,
        id="register-bad-email",
    ),
    pytest.param(
        "POST",
        "/api/v1/auth/register",
        {**REGISTRATION, "email": "x@y.test", "account_type": "admin"},
        None,
        id="register-as-admin",
    ),
    pytest.param(
        "POST",
        "/api/v1/auth/register",
        {**REGISTRATION, "email": "x@y.test", "password": LONG},
        None,
        id="register-long-password",
    ),
    pytest.param(
        "POST", "/api/v1/auth/login", {"email": 12, "password": None}, None, id="login-wrong-types"
    ),
    pytest.param("POST", "/api/v1/auth/login", b"{not json", None, id="login-not-json"),
    pytest.param(
        "POST", "/api/v1/auth/login", {"email": HUGE, "password": "x"}, None, id="login-huge-email"
    ),
    pytest.param(
        "POST", "/api/v1/auth/refresh", {"refresh_token": 5}, None, id="refresh-token-a-number"
    ),
    pytest.param("POST", "/api/v1/channels", {"name": "x"}, "provider", id="channel-no-plan"),
    pytest.param(
        "POST",
        "/api/v1/channels",
        {"name": LONG, "plan": {"price": "1", "period_days": 7}},
        "provider",
        id="channel-long-name",
    ),
    *(
        pytest.param(
            "POST",
            "/api/v1/channels",
            {"name": "x", "plan": plan},
            "provider",
            id=f"channel-plan-{name}",
        )
        for name, plan in [
            ("negative-price", {"price": "-1", "period_days": 7}),
            ("nan-price", {"price": "NaN", "period_days": 7}),
            ("zero-days", {"price": "1", "period_days": 0}),
            ("huge-price", {"price": "1e40", "period_days": 7}),
            ("price-not-a-number", {"price": "abc", "period_days": 7}),
        ]
    ),
    pytest.param(
        "PATCH",
        "/api/v1/channels/{channel}",
        {"plan": "free"},
        "provider",
        id="channel-plan-a-word",
    ),
    pytest.param(
        "PATCH",
        "/api/v1/channels/{channel}",
        {"owner_id": "{subscriber_id}"},
        "provider",
        id="channel-change-owner",
    ),
    pytest.param(
        "POST",
        "/api/v1/channels/{channel}/delegates",
        {"email": "nobody@x.test"},
        "provider",
        id="delegate-unknown-email",
    ),
    pytest.param("GET", "/api/v1/channels?page_size=100000", None, None, id="list-huge-page"),
    pytest.param("GET", "/api/v1/channels?page=abc", None, None, id="list-page-a-word"),
    pytest.param("GET", "/api/v1/channels/does-not-exist", None, None, id="channel-unknown"),
    pytest.param("GET", "/api/v1/nowhere", None, None, id="path-unknown"),
    pytest.param("PUT", "/api/v1/channels", {}, "provider", id="method-not-allowed"),
    *(
        pytest.param(
            "POST", "/api/v1/broker-accounts", body, "subscriber", id=f"broker-account-{name}"
        )
        for name, body in [
            ("kind-binance", {"kind": "binance", "label": "x", "credentials": {"token": "t"}}),
            ("no-token", {"kind": "deriv", "label": "x", "credentials": {}}),
            ("bad-token", {"kind": "deriv", "label": "x", "credentials": {"token": "bad token!"}}),
            ("iq-ssid-short", {"kind": "iqoption", "label": "x", "credentials": {"token": "t"}}),
            (
                "iq-ssid-not-hex",
                {"kind": "iqoption", "label": "x", "credentials": {"token": "ab-cd" * 8}},
            ),
            ("iq-no-password", {"kind": "iqoption", "label": "x", "credentials": {"login": "a@b"}}),
            (
                "iq-ssid-and-password",
                {
                    "kind": "iqoption",
                    "label": "x",
                    "credentials": {"token": "a" * 32, "login": "a@b", "password": "p"},
                },
            ),
            (
                "iq-balance-bogus",
                {
                    "kind": "iqoption",
                    "label": "x",
                    "credentials": {"token": "a" * 32},
                    "balance_type": "tournament",
                },
            ),
            (
                "deriv-balance-type",
                {
                    "kind": "deriv",
                    "label": "x",
                    "credentials": {"token": "t"},
                    "balance_type": "real",
                },
            ),
            ("huge-label", {"kind": "deriv", "label": HUGE, "credentials": {"token": "t"}}),
        ]
    ),
    *(
        pytest.param(
            "POST", SUBSCRIBE, subscription(**fields), "subscriber", id=f"subscribe-{name}"
        )
        for name, fields in [
            ("stake-mode-martingale", {"stake_mode": "martingale"}),
            ("negative-stake", {"stake": "-5"}),
            ("zero-stake", {"stake": "0"}),
            ("huge-stake", {"stake": "1e30", "max_stake": "1e31"}),
            ("stake-over-max", {"stake": "50", "max_stake": "20"}),
            ("percent-over-100", {"stake_mode": "percent", "stake": "250"}),
            ("infinite-stake", {"stake": "Infinity"}),
            ("stake-a-float", {"stake": 5.5}),
            ("stake-too-precise", {"stake": "0.000000001"}),
            ("zero-trades-per-day", {"max_trades_per_day": 0}),
            ("trades-per-day-a-word", {"max_trades_per_day": "many"}),
            ("negative-loss-limit", {"daily_loss_limit": "-1"}),
            ("asset-injection", {"assets": ["R_100; DROP"]}),
            ("500-assets", {"assets": [f"A{i}" for i in range(500)]}),
            ("someone-elses-account", {"broker_account_id": "someone-elses"}),
            ("paused-a-word", {"paused": "yes"}),
            ("twice", {}),  # the shared subscription exists: 409
        ]
    ),
    *(
        pytest.param(
            "PATCH", "/api/v1/subscriptions/{subscription}", body, "subscriber", id=f"update-{name}"
        )
        for name, body in [
            ("stake-over-max", {"stake": "100"}),
            ("no-stake-mode", {"stake_mode": None}),
            ("expired", {"expires_at": 0}),
        ]
    ),
    pytest.param("POST", SUBSCRIBE, HUGE.encode(), "subscriber", id="subscribe-huge-body"),
]


def _named(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with the shared objects' placeholders filled in."""
    if isinstance(value, str):
        return value.format(**ids) if "{" in value else value
    if isinstance(value, dict):
        return {k: _named(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("method", "url", "body", "who"), BAD_INPUT)
async def test_bad_input_is_a_4xx_with_the_error_body(
    shared: Shared, method: str, url: str, body: Any, who: str | None
) -> None:
    headers = dict(shared.users[who].headers) if who else {}
    kwargs: dict[str, Any] = {}
    if isinstance(body, bytes):
        headers["Content-Type"] = "application/json"
        kwargs["content"] = body
    elif body is not None:
        kwargs["json"] = _named(body, shared.ids)
    response = await shared.api.client.request(
        method, _named(url, shared.ids), headers=headers, **kwargs
    )
    assert 400 <= response.status_code < 500, response.text[:200]
    error = response.json()["error"]
    assert {"code", "message", "details"} == set(error), error


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
    assert error["message"] == "Price must be a positive amount, e.g. 10.00"
    assert error["details"][0]["key"] == "plan.price"


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
        # The field for programs, its name in words for people.
        assert error["details"][0]["key"].endswith(field), error
        assert field_label(field) in error["message"], error
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
        error = response.json()["error"]
        assert error["details"][0]["key"] == field, error
        assert (
            f"{field_label(field)} must not contain control or invisible formatting"
            in (error["message"])
        )
    renamed = await api.client.patch(
        f"/api/v1/channels/{channel_id}",
        json={"name": "Ünïcode 👨\u200d👩\u200d👧"},
        headers=provider.headers,
    )
    assert renamed.status_code == 200, renamed.text
