"""A real Deriv simulator on a free port per test, and helpers to make accounts and orders."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from apps.brokers.assets import Expiry
from apps.brokers.base import BrokerAccount, OrderRequest
from apps.brokers.deriv.adapter import DerivAdapter
from apps.brokers.deriv.simulator import RunningSimulator, SimConfig, running_simulator
from apps.core.ids import new_id

# Contracts run 30x faster than their nominal duration: a 15 s contract settles in 0.5 s.
TIME_SCALE = 30.0


class SimHandle:
    def __init__(self, running: RunningSimulator, admin: httpx.AsyncClient) -> None:
        self.running = running
        self.admin = admin
        self.url = running.url

    async def account(self, balance: str = "1000", currency: str = "USD") -> BrokerAccount:
        reply = await self.admin.post(
            "/admin/accounts", json={"currency": currency, "balance": balance}
        )
        reply.raise_for_status()
        body = reply.json()
        return BrokerAccount(token=body["token"], login=body["loginid"], currency=currency)

    async def faults(self, **switches: Any) -> None:
        (await self.admin.put("/admin/faults", json=switches)).raise_for_status()

    async def ledger(self) -> list[dict[str, Any]]:
        reply = await self.admin.get("/admin/ledger")
        reply.raise_for_status()
        contracts: list[dict[str, Any]] = reply.json()["contracts"]
        return contracts

    async def stats(self) -> dict[str, int]:
        stats: dict[str, int] = (await self.admin.get("/admin/stats")).json()
        return stats

    async def balance(self, loginid: str) -> Decimal:
        accounts = (await self.admin.get("/admin/accounts")).json()["accounts"]
        return next(Decimal(str(a["balance"])) for a in accounts if a["loginid"] == loginid)


def make_order(
    account: BrokerAccount,
    *,
    asset: str = "R_100",
    direction: str = "CALL",
    seconds: int = 15,
    ticks: int | None = None,
    stake: str = "1.00",
    valid_for: float = 5.0,
    signal_id: str | None = None,
) -> OrderRequest:
    expiry = Expiry(amount=ticks, unit="ticks") if ticks else Expiry(amount=seconds)
    return OrderRequest(
        order_id=new_id(),
        signal_id=signal_id or new_id(),
        channel_id="channel-test",
        account=account,
        asset=asset,
        direction=direction,  # type: ignore[arg-type]
        expiry=expiry,
        stake=Decimal(stake),
        valid_until=time.time() + valid_for,
    )


@pytest.fixture
def sim_config() -> SimConfig:
    return SimConfig(time_scale=TIME_SCALE)


@pytest.fixture
async def sim(sim_config: SimConfig) -> AsyncIterator[SimHandle]:
    async with (
        running_simulator(sim_config) as running,
        httpx.AsyncClient(base_url=running.admin_url, timeout=10) as admin,
    ):
        yield SimHandle(running, admin)


@pytest.fixture
async def adapter(sim: SimHandle) -> AsyncIterator[DerivAdapter]:
    adapter = DerivAdapter(sim.url, reply_timeout=3.0, reconcile_grace=0.1)
    yield adapter
    await adapter.close()
