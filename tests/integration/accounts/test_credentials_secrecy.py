"""Broker credentials: sealed in MongoDB, absent from every response and log line."""

from __future__ import annotations

import logging
from dataclasses import replace

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from apps.api.app import create_app
from apps.api.models import BrokerAccount
from apps.core.brokers.iqoption import login_form
from apps.core.embedded import free_port
from apps.core.settings import Settings
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.iqoption_sim import IQOptionSim
from tests.fixtures.live_api import Api
from tests.integration.accounts.conftest import Stores, with_deriv, with_iqoption


@pytest.fixture
def accounts_settings(settings: Settings, deriv_sim: SimHandle, iq_sim: IQOptionSim) -> Settings:
    return with_iqoption(with_deriv(settings, deriv_sim), iq_sim)


async def test_credentials_never_leave_in_clear(
    api: Api,
    stores: Stores,
    deriv_sim: SimHandle,
    iq_sim: IQOptionSim,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    deriv_token = (await deriv_sim.account(balance="99.5")).token
    [iq_account, iq_by_ssid] = await iq_sim.create_accounts(2)
    async with httpx.AsyncClient() as http:
        login = await http.post(
            iq_sim.login_url, data=login_form(iq_by_ssid.email, iq_by_ssid.password)
        )
    iq_ssid = login.json()["data"]["ssid"]
    user = await api.user("subscriber", "secret")
    bodies = []

    created = await api.client.post(
        "/api/v1/broker-accounts",
        json={"kind": "deriv", "label": "d", "credentials": {"token": deriv_token}},
        headers=user.headers,
    )
    iq = await api.client.post(
        "/api/v1/broker-accounts",
        json={
            "kind": "iqoption",
            "label": "iq",
            "credentials": {"login": iq_account.email, "password": iq_account.password},
        },
        headers=user.headers,
    )
    iq_ssid_linked = await api.client.post(
        "/api/v1/broker-accounts",
        json={"kind": "iqoption", "label": "iq2", "credentials": {"token": iq_ssid}},
        headers=user.headers,
    )
    assert created.status_code == iq.status_code == iq_ssid_linked.status_code == 201
    deriv_id, iq_id = created.json()["id"], iq.json()["id"]
    iq_ssid_id = iq_ssid_linked.json()["id"]
    verified = await api.client.post(
        f"/api/v1/broker-accounts/{deriv_id}/verify", headers=user.headers
    )
    assert verified.status_code == 200
    assert verified.json()["balance"] == "99.50"  # as the broker reports it
    # IQ Option: the API logs in with the password, or opens the socket with the ssid.
    iq_verified = await api.client.post(
        f"/api/v1/broker-accounts/{iq_id}/verify", headers=user.headers
    )
    iq_ssid_verified = await api.client.post(
        f"/api/v1/broker-accounts/{iq_ssid_id}/verify", headers=user.headers
    )
    assert iq_verified.status_code == iq_ssid_verified.status_code == 200
    listing = await api.client.get("/api/v1/broker-accounts", headers=user.headers)
    bodies = [
        created.text,
        iq.text,
        iq_ssid_linked.text,
        verified.text,
        iq_verified.text,
        iq_ssid_verified.text,
        listing.text,
    ]

    raw_docs = await stores.db.get_collection(BrokerAccount).find({}).to_list(None)
    assert len(raw_docs) == 3
    for doc in raw_docs:
        assert set(doc) >= {"ciphertext", "nonce", "key_id"}
        assert "credentials" not in doc and "token" not in doc and "password" not in doc

    log_text = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert caplog.records, "DEBUG logging was captured"
    secrets = (deriv_token, iq_account.password, iq_account.email, iq_by_ssid.password, iq_ssid)
    for secret in secrets:
        for doc in raw_docs:
            assert secret.encode() not in doc["ciphertext"]
            assert secret not in repr(doc)
        for body in bodies:
            assert secret not in body
        assert secret not in log_text


async def test_a_refused_token_is_a_4xx_with_the_brokers_message_and_nothing_is_saved(
    api: Api,
) -> None:
    user = await api.user("subscriber", "badtok")
    body = {"kind": "deriv", "label": "main", "credentials": {"token": "unknownToken"}}
    response = await api.client.post("/api/v1/broker-accounts", json=body, headers=user.headers)
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "broker_rejected",
        "message": "The token is invalid.",
        "details": {"broker_code": "InvalidToken"},
    }
    assert await api.ok("GET", "/api/v1/broker-accounts", user) == []


async def test_broker_down_is_a_502_with_retry_after_and_nothing_is_saved(
    accounts_settings: Settings, stores: Stores
) -> None:
    down = replace(
        accounts_settings,
        deriv_url=f"ws://127.0.0.1:{free_port()}/websockets/v3",
        broker_verify_timeout_seconds=2.0,
    )
    async with AsyncTestClient[Litestar](app=create_app(down)) as client:
        api = Api(client, stores.db)
        user = await api.user("subscriber", "down")
        body = {"kind": "deriv", "label": "main", "credentials": {"token": "tokDown1"}}
        response = await client.post("/api/v1/broker-accounts", json=body, headers=user.headers)
        listed = await api.ok("GET", "/api/v1/broker-accounts", user)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "broker_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert listed == []
