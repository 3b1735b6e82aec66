"""The simulator keeps its accounts, balances, contracts and ledger in its data dir: a
restarted simulator authorizes the same tokens and settles the contracts still open."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import websockets

from apps.brokers.deriv.simulator import SimConfig, running_simulator

# 120 s runs 4 s at 30x: still open when the simulator comes back.
PARAMS = {
    "contract_type": "CALL",
    "currency": "USD",
    "symbol": "R_100",
    "amount": 10,
    "basis": "stake",
    "duration": 120,
    "duration_unit": "s",
}


async def call(ws: websockets.ClientConnection, payload: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(payload))
    reply: dict[str, Any] = json.loads(await ws.recv())
    assert "error" not in reply, reply
    return reply


async def ledger(admin_url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=admin_url) as admin:
        contracts: list[dict[str, Any]] = (await admin.get("/admin/ledger")).json()["contracts"]
        return contracts


async def test_a_restarted_simulator_keeps_accounts_and_contracts_and_settles_them(
    tmp_path: Path,
) -> None:
    config = SimConfig(time_scale=30.0)
    async with running_simulator(config, data_dir=tmp_path) as first:
        async with httpx.AsyncClient(base_url=first.admin_url) as admin:
            made = (await admin.post("/admin/accounts", json={"balance": "100"})).json()
        async with websockets.connect(first.url) as ws:
            await call(ws, {"authorize": made["token"]})
            bought = (await call(ws, {"buy": "1", "price": 10, "parameters": PARAMS}))["buy"]

    async with (
        running_simulator(SimConfig(time_scale=30.0), data_dir=tmp_path) as second,
        websockets.connect(second.url) as ws,
    ):
        authorized = (await call(ws, {"authorize": made["token"]}))["authorize"]
        assert authorized["loginid"] == made["loginid"]
        assert Decimal(str(authorized["balance"])) == Decimal("90.00")
        kept = await call(ws, {"proposal_open_contract": 1, "contract_id": bought["contract_id"]})
        assert kept["proposal_open_contract"]["shortcode"] == bought["shortcode"]

        deadline = time.monotonic() + 60
        while (row := (await ledger(second.admin_url))[0])["status"] == "open":
            assert time.monotonic() < deadline, "the contract never settled"
            await asyncio.sleep(0.1)
        assert row["contract_id"] == bought["contract_id"]
        won = Decimal(str(row["payout"])) if row["status"] == "won" else Decimal(0)
        balance = (await call(ws, {"balance": 1}))["balance"]["balance"]
        assert Decimal(str(balance)) == Decimal("90.00") + won

        again = (await call(ws, {"buy": "1", "price": 10, "parameters": PARAMS}))["buy"]
        assert again["contract_id"] > bought["contract_id"]
        assert again["transaction_id"] > bought["transaction_id"]

    async with running_simulator(SimConfig(time_scale=30.0), data_dir=tmp_path) as third:
        rows = await ledger(third.admin_url)
        assert (rows[0]["contract_id"], rows[0]["status"]) == (bought["contract_id"], row["status"])
        assert [r["contract_id"] for r in rows] == [bought["contract_id"], again["contract_id"]]
        payouts = sum(Decimal(str(r["payout"])) for r in rows if r["status"] == "won")
        assert third.simulator.accounts[made["loginid"]].balance == Decimal("80.00") + payouts
