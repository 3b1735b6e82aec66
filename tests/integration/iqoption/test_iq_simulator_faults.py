"""Each fault switch of the IQ Option simulator, over its real WebSocket and admin API.

The shared switches (latency, injected refusals, a reply lost after the sale is booked,
dropped connections, a closed market, forced outcomes) and IQ Option's own (suspended
actives; the login limit is in the protocol tests), the rate limits, and heartbeats and
timeSync on a quick clock. The ledger is the truth each test checks: what was booked.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import websockets

from apps.brokers.iqoption.simulator import SimConfig, running_simulator
from apps.core.brokers.iqoption import (
    STATUS_MARKET_CLOSED,
    STATUS_NO_FUNDS,
    STATUS_OK,
    STATUS_SUSPENDED,
    ssid_message,
)
from tests.fixtures.iqoption_sim import (
    NO_FAULTS,
    REPLY_TIMEOUT,
    Client,
    Connect,
    IQOptionSim,
    open_option_message,
    ssid_of,
)
from tests.fixtures.waiting import wait_for


async def test_latency_delays_but_keeps_every_reply_in_order(
    iqoption_sim: IQOptionSim, iq_connect: Connect
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    client = await iq_connect(account)
    await iqoption_sim.set_faults(latency_ms=150)
    option = await client.buy("slow", account.practice_balance_id)
    assert option["status"] == STATUS_OK
    assert [m["name"] for m in client.replies("slow")] == ["result", "option"]
    assert [r["request_id"] for r in await iqoption_sim.ledger()] == ["slow"]


async def test_injected_refusals_book_nothing(
    iqoption_sim: IQOptionSim, iq_connect: Connect
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    client = await iq_connect(account)
    balance = account.practice_balance_id
    await iqoption_sim.set_faults(error_code="4101", error_count=1)
    assert (await client.buy("e1", balance))["status"] == STATUS_NO_FUNDS
    assert (await client.buy("e2", balance))["status"] == STATUS_OK  # the count is spent
    await iqoption_sim.set_faults(error_code="unavailable", error_count=1)
    refused = await client.buy("e3", balance)
    assert refused["status"] == STATUS_SUSPENDED and refused["msg"]["message"] == "unavailable"
    await iqoption_sim.set_faults(error_rate=1.0)
    assert (await client.buy("e4", balance))["status"] == STATUS_SUSPENDED
    await iqoption_sim.reset_faults()
    assert (await client.buy("e5", balance))["status"] == STATUS_OK
    assert [r["request_id"] for r in await iqoption_sim.ledger()] == ["e2", "e5"]


async def test_a_reply_lost_after_the_sale_is_booked(
    iqoption_sim: IQOptionSim, iq_connect: Connect
) -> None:
    (account,) = await iqoption_sim.create_accounts(1, balance="50")
    client = await iq_connect(account)
    await iqoption_sim.set_faults(drop_mid_buy=1)
    await client.send(open_option_message("lost-reply", account.real_balance_id, price=5))
    await asyncio.wait_for(client.closed.wait(), REPLY_TIMEOUT)
    assert client.replies("lost-reply") == []
    (row,) = await iqoption_sim.ledger()
    assert row["request_id"] == "lost-reply" and row["status"] == "open"
    assert await iqoption_sim.balances(account.user_id) == (Decimal("50.00"), Decimal("45.00"))
    # The switch is spent: a new socket finds the option by polling, and buys normally.
    again = await iq_connect(account)
    await again.send(_get_options("find", account.real_balance_id))
    (listed,) = (await again.reply("find", "options"))["msg"]["options"]
    assert listed["id"] == row["option_id"] and listed["price"] == 5
    assert (await again.buy("next", account.real_balance_id))["status"] == STATUS_OK


async def test_a_connection_dropped_after_n_messages(
    iqoption_sim: IQOptionSim, iq_connect: Connect
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    client = await iq_connect(account)
    await iqoption_sim.set_faults(drop_after_messages=1)
    await client.send(open_option_message("dropped", account.practice_balance_id))
    await asyncio.wait_for(client.closed.wait(), REPLY_TIMEOUT)
    assert client.ws.close_code == 1011
    assert await iqoption_sim.ledger() == []
    assert (await iqoption_sim.stats())["drops"] == 1


async def test_a_closed_market_and_a_suspended_active_are_refused(
    iqoption_sim: IQOptionSim, iq_connect: Connect
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    client = await iq_connect(account)
    balance = account.practice_balance_id
    await iqoption_sim.set_faults(market_closed=True)
    assert (await client.buy("closed", balance))["status"] == STATUS_MARKET_CLOSED
    faults = await iqoption_sim.set_faults(market_closed=False, suspended_actives=[1])
    assert faults["suspended_actives"] == [1] and faults["market_closed"] is False
    suspended = await client.buy("suspended", balance, active_id=1)
    assert suspended["status"] == STATUS_SUSPENDED
    assert suspended["msg"]["message"] == "Cannot purchase an option (active is suspended)"
    assert (await client.buy("other-active", balance, active_id=5))["status"] == STATUS_OK
    assert [r["request_id"] for r in await iqoption_sim.ledger()] == ["other-active"]


async def test_reset_faults_puts_every_switch_at_rest(iqoption_sim: IQOptionSim) -> None:
    await iqoption_sim.set_faults(
        latency_ms=5,
        drop_mid_buy=2,
        force_outcome="equal",
        suspended_actives=[1, 2],
        login_limit=1,
    )
    await iqoption_sim.reset_faults()
    assert (await iqoption_sim.admin.get("/admin/faults")).json() == NO_FAULTS


async def test_a_bad_switch_value_is_a_400(iqoption_sim: IQOptionSim) -> None:
    reply = await iqoption_sim.admin.put("/admin/faults", json={"force_outcome": "maybe"})
    assert reply.status_code == 400 and "error" in reply.json()
    reply = await iqoption_sim.admin.put("/admin/faults", json={"suspended_actives": "all"})
    assert reply.status_code == 400
    assert (await iqoption_sim.admin.get("/admin/faults")).json() == NO_FAULTS


async def test_a_rate_limited_call_is_answered_unsuccessful(
    iqoption_sim: IQOptionSim, iq_connect: Connect
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    client = await iq_connect(account)
    reply = await iqoption_sim.admin.put("/admin/limits", json={"sendMessage": [[1, 3600]]})
    assert reply.status_code == 200
    assert (await client.buy("first", account.practice_balance_id))["status"] == STATUS_OK
    await client.send(open_option_message("second", account.practice_balance_id))
    result = await client.reply("second", "result")
    assert result["msg"]["success"] is False
    assert [r["request_id"] for r in await iqoption_sim.ledger()] == ["first"]


QUICK_CLOCK = SimConfig(time_sync_seconds=0.1, heartbeat_seconds=0.2, heartbeat_misses=3)


async def test_time_sync_and_heartbeats_and_a_silent_socket_closed() -> None:
    async with (
        running_simulator(QUICK_CLOCK) as serving,
        httpx.AsyncClient(base_url=serving.admin_url, timeout=10) as admin,
    ):
        sim = IQOptionSim(serving, admin)
        (account,) = await sim.create_accounts(1)
        answering = Client(await websockets.connect(sim.ws_url))
        silent = Client(await websockets.connect(sim.ws_url), answer_heartbeats=False)
        try:
            for client in (answering, silent):
                await client.send(ssid_message(await ssid_of(sim, account)))
                await client.expect(lambda m: m.get("name") == "profile", "profile")

            def heartbeats() -> int:
                return len([m for m in answering.received if m.get("name") == "heartbeat"])

            await wait_for(lambda: heartbeats() >= 8, what="eight heartbeats answered")
            await asyncio.wait_for(silent.closed.wait(), REPLY_TIMEOUT)
            assert silent.ws.close_code == 1000
            beats = [m for m in silent.received if m.get("name") == "heartbeat"]
            assert len(beats) == QUICK_CLOCK.heartbeat_misses
            assert not answering.closed.is_set()
            syncs = [m["msg"] for m in answering.received if m.get("name") == "timeSync"]
            assert len(syncs) >= 2 and syncs == sorted(syncs)
            assert all(isinstance(s, int) and s > 1_600_000_000_000 for s in syncs)
        finally:
            await answering.close()
            await silent.close()


def _get_options(request_id: str, balance_id: int) -> dict[str, Any]:
    return {
        "name": "sendMessage",
        "request_id": request_id,
        "msg": {
            "name": "get-options",
            "version": "1.0",
            "body": {"limit": 10, "instrument_type": "binary,turbo", "user_balance_id": balance_id},
        },
    }
