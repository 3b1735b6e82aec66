"""IQ Option broker accounts: linked with an e-mail and password or an ssid, on the practice
or the real balance, verified at the real IQ Option simulator over its real protocol (HTTP
login, then the WebSocket's ssid → profile); every refusal is one plain 4xx/5xx."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from apps.api.app import create_app
from apps.brokers.credentials import open_record
from apps.core.brokers.iqoption import login_form
from apps.core.credentials import cipher_from_settings, unpack_account_record
from apps.core.embedded import free_port
from apps.core.settings import Settings
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.iqoption_sim import IQAccount, IQOptionSim
from tests.fixtures.live_api import Api, User
from tests.integration.accounts.conftest import (
    Stores,
    with_deriv,
    with_iqoption,
)

ACCOUNTS = "/api/v1/broker-accounts"


@pytest.fixture
def accounts_settings(settings: Settings, deriv_sim: SimHandle, iq_sim: IQOptionSim) -> Settings:
    return with_iqoption(with_deriv(settings, deriv_sim), iq_sim)


async def link(
    api: Api, user: User, credentials: dict[str, str], **extra: Any
) -> tuple[str, httpx.Response]:
    """Link the way the dashboard and the CLI do: the API verifies at the broker and
    saves the account only once it accepts ("" and the refusal otherwise)."""
    created = await api.client.post(
        ACCOUNTS,
        json={"kind": "iqoption", "label": "iq", "credentials": credentials, **extra},
        headers=user.headers,
    )
    return (str(created.json()["id"]) if created.status_code == 201 else ""), created


def password_of(account: IQAccount) -> dict[str, str]:
    return {"login": account.email, "password": account.password}


async def ssid_of(sim: IQOptionSim, account: IQAccount) -> str:
    async with httpx.AsyncClient() as client:
        reply = await client.post(sim.login_url, data=login_form(account.email, account.password))
    ssid = reply.json()["data"]["ssid"]
    assert isinstance(ssid, str)
    return ssid


def refusal(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], (error.get("details") or {}).get("broker_code", "")


async def test_an_account_linked_with_its_password_trades_its_practice_balance(
    api: Api, stores: Stores, iq_sim: IQOptionSim, accounts_settings: Settings
) -> None:
    [account] = await iq_sim.create_accounts(1, balance="1234.5", currency="EUR")
    user = await api.user("subscriber", "iq")
    account_id, verified = await link(api, user, password_of(account))

    assert verified.status_code == 201, verified.text
    view = verified.json()
    assert (view["kind"], view["balance_type"]) == ("iqoption", "practice")
    assert (view["currency"], Decimal(view["balance"])) == ("EUR", Decimal("1234.5"))
    assert view["loginid"] == str(account.user_id) and view["verified_at"]
    # The workers' record: the balance to trade, and the e-mail and password still sealed.
    packed = await stores.redis.get(stores.topology.broker_account_key(account_id))
    record = unpack_account_record(packed)
    assert (record.kind, record.balance_type, record.currency) == ("iqoption", "practice", "EUR")
    assert account.email not in record.login and account.password.encode() not in packed
    kind, opened = open_record(cipher_from_settings(accounts_settings), account_id, packed)
    assert (kind, opened.login, opened.password) == ("iqoption", account.email, account.password)
    assert opened.balance_type == "practice"


async def test_the_real_balance_is_the_one_reported_when_chosen(
    api: Api, iq_sim: IQOptionSim
) -> None:
    [account] = await iq_sim.create_accounts(1, balance="10000")
    # The two balances differ once the real one has traded; set it as the broker holds it.
    iq_sim.simulator.accounts[account.user_id].real = Decimal("250.00")
    user = await api.user("subscriber", "iqreal")
    _, real = await link(api, user, password_of(account), balance_type="real")
    _, practice = await link(api, user, password_of(account))
    assert (real.status_code, practice.status_code) == (201, 201)
    assert (real.json()["balance_type"], Decimal(real.json()["balance"])) == ("real", 250)
    assert (practice.json()["balance_type"], Decimal(practice.json()["balance"])) == (
        "practice",
        10000,
    )
    listed = (await api.client.get(ACCOUNTS, headers=user.headers)).json()
    assert sorted(a["balance_type"] for a in listed) == ["practice", "real"]


async def test_a_wrong_password_is_refused_in_plain_words(api: Api, iq_sim: IQOptionSim) -> None:
    [account] = await iq_sim.create_accounts(1)
    user = await api.user("subscriber", "iqbad")
    _, verified = await link(api, user, {"login": account.email, "password": "not-the-password"})
    assert refusal(verified) == (422, "broker_rejected", "credentials_refused")
    assert "refused this e-mail and password" in verified.json()["error"]["message"]
    # Nothing the broker refused is saved.
    assert (await api.client.get(ACCOUNTS, headers=user.headers)).json() == []


async def test_a_two_factor_account_is_told_to_link_with_an_ssid(
    api: Api, iq_sim: IQOptionSim
) -> None:
    [account] = await iq_sim.create_accounts(1, two_factor=True)
    user = await api.user("subscriber", "iq2fa")
    _, verified = await link(api, user, password_of(account))
    assert refusal(verified) == (422, "broker_rejected", "two_factor_required")
    message = verified.json()["error"]["message"]
    assert "two-factor" in message and "ssid" in message


async def test_an_account_linked_with_an_ssid_needs_no_login_until_the_ssid_is_revoked(
    api: Api, iq_sim: IQOptionSim
) -> None:
    [account] = await iq_sim.create_accounts(1, balance="77")
    ssid = await ssid_of(iq_sim, account)
    # Logins are limited to one, used up above: the ssid account must not log in again.
    await iq_sim.set_faults(login_limit=1)
    user = await api.user("subscriber", "iqssid")
    account_id, verified = await link(api, user, {"token": ssid}, balance_type="real")
    assert verified.status_code == 201, verified.text
    view = verified.json()
    assert (view["loginid"], view["balance_type"], Decimal(view["balance"])) == (
        str(account.user_id),
        "real",
        77,
    )
    assert ssid not in verified.text

    await iq_sim.revoke(account.user_id)
    again = await api.client.post(f"{ACCOUNTS}/{account_id}/verify", headers=user.headers)
    assert refusal(again) == (422, "broker_rejected", "credentials_refused")
    assert "ssid" in again.json()["error"]["message"]


async def test_a_login_limit_is_a_502_that_says_when_to_retry(
    api: Api, iq_sim: IQOptionSim
) -> None:
    [account] = await iq_sim.create_accounts(1)
    await iq_sim.set_faults(login_limit=1)
    await ssid_of(iq_sim, account)  # the one login allowed in the window
    user = await api.user("subscriber", "iqlimit")
    _, verified = await link(api, user, password_of(account))
    assert verified.status_code == 502
    error = verified.json()["error"]
    assert error["code"] == "broker_unavailable"
    assert "limiting sign-ins" in error["message"] and "try again in" in error["message"]
    assert 0 < int(verified.headers["Retry-After"]) <= 60


async def test_a_simulator_that_is_down_is_a_plain_502(
    accounts_settings: Settings, stores: Stores
) -> None:
    port = free_port()
    down = replace(
        accounts_settings,
        iqoption_login_url=f"http://127.0.0.1:{port}/api/v2/login",
        iqoption_ws_url=f"ws://127.0.0.1:{port}/echo/websocket",
        broker_verify_timeout_seconds=2.0,
    )
    async with AsyncTestClient[Litestar](app=create_app(down)) as client:
        api = Api(client, stores.db)
        user = await api.user("subscriber", "iqdown")
        for credentials in ({"login": "a@b.c", "password": "p"}, {"token": "ab" * 16}):
            _, verified = await link(api, user, credentials)
            assert verified.status_code == 502
            assert verified.json()["error"] == {
                "code": "broker_unavailable",
                "message": "IQ Option could not be reached, try again later",
                "details": None,
            }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"kind": "deriv", "credentials": {"token": "tok"}, "balance_type": "real"},
            "a Deriv account has one balance; balance_type is for IQ Option accounts",
        ),
        (
            {"kind": "iqoption", "credentials": {"token": "short"}},
            "an IQ Option ssid is 16 to 128 letters and digits",
        ),
        (
            {"kind": "iqoption", "credentials": {"login": "a@b.c"}},
            "an IQ Option account takes an e-mail and a password, or an ssid",
        ),
        (
            {"kind": "iqoption", "credentials": {"token": "a" * 32, "password": "p"}},
            "an IQ Option account takes an e-mail and a password, or an ssid",
        ),
    ],
)
async def test_a_body_of_the_wrong_shape_for_its_kind_is_a_plain_400(
    api: Api, body: dict[str, Any], message: str
) -> None:
    user = await api.user("subscriber", "iqshape")
    response = await api.client.post(ACCOUNTS, json={"label": "x", **body}, headers=user.headers)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == message
    assert (await api.client.get(ACCOUNTS, headers=user.headers)).json() == []
