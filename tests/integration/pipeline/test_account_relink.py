"""A broker account whose token is revoked: one refused order, then the account needs
re-linking, its subscriptions pause, the router refuses at once; re-linking trades again.

Real processes (router, ledger, Deriv worker), the live API and the Deriv simulator; the
token is revoked through the simulator's admin API, as a user deleting it at Deriv.
"""

from __future__ import annotations

from typing import Any

import pytest
from nats.aio.client import Client as NATS

from apps.core.settings import Settings
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import Api, ApiServer, User
from tests.fixtures.pipeline import Pipeline
from tests.fixtures.waiting import wait_for

SIGNAL = {"asset": "R_100", "direction": "CALL", "expiry_seconds": 15, "stake": "1"}


@pytest.fixture
def api_settings(pipeline_settings: Settings) -> Settings:
    return pipeline_settings


async def send_signal(http: Api, provider: User, channel_id: str) -> str:
    path = f"/api/v1/channels/{channel_id}/signals"
    return str((await http.ok("POST", path, provider, json=SIGNAL))["signal_id"])


async def final_order(http: Api, subscriber: User, signal_id: str) -> dict[str, Any]:
    async def final() -> dict[str, Any] | None:
        for order in await http.ok("GET", "/api/v1/orders", subscriber):
            if order["signal_id"] == signal_id and order["state"] != "pending":
                return order  # type: ignore[no-any-return]
        return None

    return await wait_for(final, what=f"the order of signal {signal_id}")


async def subscriptions(http: Api, subscriber: User) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in await http.ok("GET", "/api/v1/subscriptions", subscriber)}


async def test_revoked_token_pauses_the_account_until_it_is_relinked(
    api_server: ApiServer, http: Api, pipeline: Pipeline, sim: SimHandle, nc: NATS
) -> None:
    provider = await http.user("provider", "provider")
    channel = await http.channel(provider)
    other_channel = await http.channel(provider, name="Beta")
    subscriber = await http.user("subscriber", "sub")
    linked = await sim.account(balance="500")
    account = await http.ok(
        "POST",
        "/api/v1/broker-accounts",
        subscriber,
        json={"kind": "deriv", "label": "sim", "credentials": {"token": linked.token}},
    )
    account_id = account["id"]
    assert account["status"] == "active"
    await http.ok("POST", f"/api/v1/broker-accounts/{account_id}/verify", subscriber)
    copying = await http.subscribe(subscriber, channel, account_id, stake="1")
    # Paused by its subscriber: re-linking must leave it paused.
    held = await http.subscribe(subscriber, other_channel, account_id, stake="1", paused=True)
    for name in ("router", "ledger", "worker"):
        await pipeline.start(name)
    await pipeline.ready(nc)

    fresh = await sim.revoke(linked)
    refused = await final_order(http, subscriber, await send_signal(http, provider, channel))
    assert refused["state"] == "rejected"
    assert "InvalidToken" in refused["reason"], refused

    async def needs_relink() -> dict[str, Any] | None:
        for listed in await http.ok("GET", "/api/v1/broker-accounts", subscriber):
            if listed["id"] == account_id and listed["status"] == "needs_relink":
                return listed  # type: ignore[no-any-return]
        return None

    marked = await wait_for(needs_relink, what="the account to need re-linking")
    assert "InvalidToken" in marked["relink_reason"]
    assert marked["relink_since"] is not None
    paused = (await subscriptions(http, subscriber))[copying]
    assert paused["paused"] and paused["status"] == "paused"
    assert paused["paused_reason"].startswith("broker account needs re-linking: ")
    assert (await subscriptions(http, subscriber))[held]["paused_reason"] == ""

    # The router refuses the next order itself, with the reason: the broker sees nothing.
    buys, contracts = (await sim.stats())["buys"], len(await sim.ledger())
    at_router = await final_order(http, subscriber, await send_signal(http, provider, channel))
    assert at_router["state"] == "rejected"
    assert at_router["reason"] == paused["paused_reason"]
    assert (await sim.stats())["buys"] == buys and len(await sim.ledger()) == contracts

    # Resuming by hand is refused while the credentials are refused.
    resume = await http.call(
        "PATCH", f"/api/v1/subscriptions/{copying}", subscriber, json={"paused": False}
    )
    assert resume.status_code == 409, resume.text

    # The revoked token is refused again, in plain words; the new one re-links.
    path = f"/api/v1/broker-accounts/{account_id}/credentials"
    stale = await http.call("PUT", path, subscriber, json={"credentials": {"token": linked.token}})
    assert stale.status_code == 422, stale.text
    relinked = await http.ok("PUT", path, subscriber, json={"credentials": {"token": fresh.token}})
    assert relinked["status"] == "active"
    assert relinked["relink_reason"] == "" and relinked["relink_since"] is None
    now = await subscriptions(http, subscriber)
    assert not now[copying]["paused"] and now[copying]["paused_reason"] == ""
    assert now[held]["paused"] and now[held]["paused_reason"] == ""

    placed = await final_order(http, subscriber, await send_signal(http, provider, channel))
    assert placed["state"] == "placed", (placed, pipeline.log("worker")[-3000:])
    assert len(await sim.ledger()) == contracts + 1
