"""The IQ Option simulator's state: what survives a restart, what the admin's account calls
change, and that no secret is kept or shown in clear.

A restart replays the journal: the same passwords and ssids log in, the balances and the
ledger are unchanged, and an option open at the restart still settles and is credited.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import websockets

from apps.brokers.iqoption.simulator import SimConfig, running_simulator
from apps.brokers.iqoption.simulator.journal import JOURNAL_FILE
from apps.core.brokers.iqoption import (
    STATUS_OK,
    Profile,
    SsidRefused,
    read_profile,
    ssid_message,
)
from tests.fixtures.iqoption_sim import (
    REPLY_TIMEOUT,
    TIME_SCALE,
    Client,
    Connect,
    IQOptionSim,
    login,
    ssid_of,
)
from tests.fixtures.waiting import wait_for


@asynccontextmanager
async def simulator(data_dir: Path, time_scale: float) -> AsyncIterator[IQOptionSim]:
    async with (
        running_simulator(SimConfig(time_scale=time_scale), data_dir=data_dir) as serving,
        httpx.AsyncClient(base_url=serving.admin_url, timeout=10) as admin,
    ):
        yield IQOptionSim(serving, admin)


async def profile_of(sim: IQOptionSim, ssid: str) -> object:
    client = Client(await websockets.connect(sim.ws_url))
    try:
        await client.send(ssid_message(ssid))
        message = await client.expect(lambda m: m.get("name") == "profile", "profile")
        return read_profile(message["msg"])
    finally:
        await client.close()


async def test_accounts_ssids_balances_and_options_survive_a_restart(tmp_path: Path) -> None:
    # At scale 1 the option is still open when the simulator stops (it ends 31 s or more
    # after the purchase); after the restart, at the tests' scale, it settles.
    async with simulator(tmp_path, 1.0) as sim:
        (account,) = await sim.create_accounts(1, balance="40")
        ssid = await ssid_of(sim, account)
        client = Client(await websockets.connect(sim.ws_url))
        await client.send(ssid_message(ssid))
        await client.expect(lambda m: m.get("name") == "profile", "profile")
        option = await client.buy("before-restart", account.practice_balance_id, price=10)
        assert option["status"] == STATUS_OK
        await client.close()
        ledger = await sim.ledger()
    assert [r["status"] for r in ledger] == ["open"]

    async with simulator(tmp_path, TIME_SCALE) as sim:
        await sim.set_faults(force_outcome="won")
        assert (await login(sim, account.email, account.password)).status_code == 200
        profile = await profile_of(sim, ssid)  # the old ssid still logs in
        assert isinstance(profile, Profile) and profile.user_id == account.user_id

        async def settled() -> list[dict[str, object]]:
            rows = await sim.ledger()
            return rows if rows[0]["status"] != "open" else []

        (row,) = await wait_for(settled, what="the option open at the restart settled")
        assert row["request_id"] == "before-restart"
        assert row["option_id"] == option["msg"]["id"]
        assert row["status"] == "won" and row["profit"] == 8.5
        assert await sim.balances(account.user_id) == (Decimal("48.50"), Decimal("40.00"))

    async with simulator(tmp_path, TIME_SCALE) as sim:  # and once settled, it stays so
        (row,) = await sim.ledger()
        assert row["status"] == "won"
        assert await sim.balances(account.user_id) == (Decimal("48.50"), Decimal("40.00"))
        (other,) = await sim.create_accounts(1)
        assert other.user_id == account.user_id + 1  # ids go on where they stopped


async def test_a_password_change_revokes_ssids_and_closes_sockets(
    iqoption_sim: IQOptionSim, iq_connect: Connect
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    ssid = await ssid_of(iqoption_sim, account)
    client = await iq_connect(ssid=ssid)
    await iqoption_sim.change_password(account.user_id, "a-new-password")
    await asyncio.wait_for(client.closed.wait(), REPLY_TIMEOUT)
    assert await profile_of(iqoption_sim, ssid) == SsidRefused()
    assert (await login(iqoption_sim, account.email, account.password)).status_code == 403
    assert (await login(iqoption_sim, account.email, "a-new-password")).status_code == 200


async def test_a_revoke_refuses_the_ssid_but_keeps_the_password_and_open_sockets(
    iqoption_sim: IQOptionSim, iq_connect: Connect
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    ssid = await ssid_of(iqoption_sim, account)
    client = await iq_connect(ssid=ssid)
    await iqoption_sim.revoke(account.user_id)
    assert await profile_of(iqoption_sim, ssid) == SsidRefused()
    assert (await client.buy("still-open", account.practice_balance_id))["status"] == STATUS_OK
    assert (await login(iqoption_sim, account.email, account.password)).status_code == 200


async def test_account_calls_on_an_unknown_account_are_404(iqoption_sim: IQOptionSim) -> None:
    for call, body in (("password", {"password": "x"}), ("revoke", None)):
        reply = await iqoption_sim.admin.post(f"/admin/accounts/1/{call}", json=body)
        assert reply.status_code == 404 and "error" in reply.json()
    (account,) = await iqoption_sim.create_accounts(1)
    reply = await iqoption_sim.admin.post(
        f"/admin/accounts/{account.user_id}/password", json={"password": ""}
    )
    assert reply.status_code == 400


async def test_no_secret_is_kept_or_shown_in_clear(tmp_path: Path) -> None:
    async with simulator(tmp_path, TIME_SCALE) as sim:
        (account,) = await sim.create_accounts(1)
        ssid = await ssid_of(sim, account)
        client = Client(await websockets.connect(sim.ws_url))
        await client.send(ssid_message(ssid))
        await client.expect(lambda m: m.get("name") == "profile", "profile")
        await client.buy("order", account.practice_balance_id)
        await client.close()
        await sim.change_password(account.user_id, "changed-secret")
        shown = json.dumps(
            [
                await sim.ledger(),
                (await sim.admin.get("/admin/accounts")).json(),
                await sim.stats(),
            ]
        )
        assert account.password not in repr(account)
    journal = (tmp_path / JOURNAL_FILE).read_text()
    for secret in (account.password, ssid, "changed-secret"):
        assert secret not in journal
        assert secret not in shown
