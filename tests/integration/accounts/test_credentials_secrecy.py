"""Broker credentials: sealed in MongoDB, absent from every response and log line."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from apps.api.app import create_app
from apps.api.models import BrokerAccount
from apps.core.embedded import free_port
from apps.core.settings import Settings
from tests.fixtures.live_api import Api
from tests.integration.accounts.conftest import FakeDeriv, Stores

DERIV_TOKEN = "a1-SeCrEtDerivToken987"
IQ_PASSWORD = "iq-Pa55word-NeverShown"
IQ_LOGIN = "trader.login@iq.example"


async def test_credentials_never_leave_in_clear(
    api: Api, stores: Stores, fake_deriv: FakeDeriv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_deriv.accounts[DERIV_TOKEN] = {"loginid": "CR7", "currency": "USD", "balance": "99.5"}
    user = await api.user("subscriber", "secret")
    bodies = []

    created = await api.client.post(
        "/api/v1/broker-accounts",
        json={"kind": "deriv", "label": "d", "credentials": {"token": DERIV_TOKEN}},
        headers=user.headers,
    )
    iq = await api.client.post(
        "/api/v1/broker-accounts",
        json={
            "kind": "iqoption",
            "label": "iq",
            "currency": "USD",
            "credentials": {"login": IQ_LOGIN, "password": IQ_PASSWORD},
        },
        headers=user.headers,
    )
    assert created.status_code == iq.status_code == 201
    deriv_id, iq_id = created.json()["id"], iq.json()["id"]
    verified = await api.client.post(
        f"/api/v1/broker-accounts/{deriv_id}/verify", headers=user.headers
    )
    assert verified.status_code == 200
    assert verified.json()["balance"] == "99.5"
    assert fake_deriv.received[-1]["authorize"] == DERIV_TOKEN  # it really was sent
    unsupported = await api.client.post(
        f"/api/v1/broker-accounts/{iq_id}/verify", headers=user.headers
    )
    assert unsupported.status_code == 400
    assert unsupported.json()["error"]["code"] == "broker_not_supported"
    listing = await api.client.get("/api/v1/broker-accounts", headers=user.headers)
    bodies = [created.text, iq.text, verified.text, unsupported.text, listing.text]

    raw_docs = await stores.db.get_collection(BrokerAccount).find({}).to_list(None)
    assert len(raw_docs) == 2
    for doc in raw_docs:
        assert set(doc) >= {"ciphertext", "nonce", "key_id"}
        assert "credentials" not in doc and "token" not in doc and "password" not in doc

    log_text = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert caplog.records, "DEBUG logging was captured"
    for secret in (DERIV_TOKEN, IQ_PASSWORD, IQ_LOGIN):
        for doc in raw_docs:
            assert secret.encode() not in doc["ciphertext"]
            assert secret not in repr(doc)
        for body in bodies:
            assert secret not in body
        assert secret not in log_text


async def test_bad_token_is_a_4xx_with_the_brokers_message(api: Api) -> None:
    user = await api.user("subscriber", "badtok")
    account_id = await api.broker_account(user, token="unknownToken")
    response = await api.client.post(
        f"/api/v1/broker-accounts/{account_id}/verify", headers=user.headers
    )
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "broker_rejected",
        "message": "The token is invalid.",
        "details": {"broker_code": "InvalidToken"},
    }


async def test_broker_down_is_a_502(accounts_settings: Settings, stores: Stores) -> None:
    down = replace(
        accounts_settings,
        deriv_url=f"ws://127.0.0.1:{free_port()}/websockets/v3",
        broker_verify_timeout_seconds=2.0,
    )
    async with AsyncTestClient[Litestar](app=create_app(down)) as client:
        api = Api(client, stores)
        user = await api.user("subscriber", "down")
        account_id = await api.broker_account(user)
        response = await client.post(
            f"/api/v1/broker-accounts/{account_id}/verify", headers=user.headers
        )
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "broker_unavailable"
