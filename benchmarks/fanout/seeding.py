"""What a benchmark sends and to whom: a provider, its channels, and N subscriptions over M
fresh simulator accounts written straight into Redis by the API's own projection functions
(registering 100,000 people through argon2 would measure argon2)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from apps.api.models import BrokerAccount, BrokerKind, Subscription
from apps.api.subscriptions.projection import write_broker_account, write_subscriptions
from apps.core.brokers.deriv import deriv_symbol
from apps.core.credentials import BrokerCredentials, cipher_from_settings
from apps.core.ids import new_id
from apps.core.redis import connect_redis_from
from apps.core.settings import Settings
from apps.core.topology import Topology

SIGNAL: dict[str, str | int] = {
    "asset": "R_100",
    "direction": "CALL",
    "expiry_seconds": 15,
    "stake": "1",
}
# A signal both brokers take, for subscribers split between them: IQ Option lists no
# synthetic index, and sells whole minutes (the router picks the turbo expiry nearest to
# 120 s, which leaves a fan-out a minute at least before IQ Option's purchase cut-off).
MIXED_SIGNAL: dict[str, str | int] = {
    "asset": "EURUSD",
    "direction": "CALL",
    "expiry_seconds": 120,
    "stake": "1",
}
PASSWORD = "bench-Password-1234"  # a throwaway user on a throwaway stack


@dataclass
class Provider:
    token: str
    email: str = ""
    at: float = 0.0

    async def fresh(self, client: httpx.AsyncClient) -> None:
        """Log in again before the 15-minute access token runs out (long benchmarks);
        not more often: logins are rate-limited per account."""
        if time.monotonic() - self.at < 600:
            return
        body = {"email": self.email, "password": PASSWORD}
        login = await client.post("/api/v1/auth/login", json=body)
        login.raise_for_status()
        self.token, self.at = login.json()["access_token"], time.monotonic()


async def provider(client: httpx.AsyncClient) -> Provider:
    email = f"bench-{time.time_ns()}@example.test"
    body = {
        "email": email,
        "password": PASSWORD,
        "display_name": "Bench",
        "account_type": "provider",
    }
    (await client.post("/api/v1/auth/register", json=body)).raise_for_status()
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    login.raise_for_status()
    return Provider(login.json()["access_token"], email, time.monotonic())


async def new_channel(client: httpx.AsyncClient, who: Provider, name: str) -> str:
    body = {"name": name, "description": "benchmark", "plan": {"price": "10", "period_days": 30}}
    reply = await client.post("/api/v1/channels", json=body, headers=auth(who))
    reply.raise_for_status()
    return str(reply.json()["id"])


def auth(who: Provider) -> dict[str, str]:
    return {"Authorization": f"Bearer {who.token}"}


async def seed(
    settings: Settings,
    sim: httpx.AsyncClient,
    channel_id: str,
    count: int,
    accounts: int,
    *,
    kind: BrokerKind = "deriv",
    signal: dict[str, str | int] = SIGNAL,
) -> list[dict[str, Any]]:
    """``count`` subscriptions over ``accounts`` fresh accounts of the ``kind`` simulator
    ``sim``, projected into Redis by the API's own functions; returns the baseline's view
    of the same subscribers."""
    if kind == "deriv":
        made = await sim.post(
            "/admin/accounts/batch",
            json={"count": accounts, "currency": "USD", "balance": "1000000"},
        )
    else:
        made = await sim.post(
            "/admin/accounts", json={"count": accounts, "currency": "USD", "balance": "1000000"}
        )
    made.raise_for_status()
    sim_accounts = made.json()["accounts"]
    cipher = cipher_from_settings(settings)
    redis = connect_redis_from(settings)
    topology = Topology(settings.namespace)
    now = datetime.now(UTC)
    baseline: list[dict[str, Any]] = []
    for i, sim_account in enumerate(sim_accounts):
        account_id = new_id()
        job: dict[str, Any]
        if kind == "deriv":
            credentials = BrokerCredentials(token=sim_account["token"])
            loginid = sim_account["loginid"]
            # The baseline buys with Deriv's own symbol (frxEURUSD for EURUSD).
            symbol = deriv_symbol(str(signal["asset"]))
            assert isinstance(symbol, str), f"Deriv has no symbol for {signal['asset']}"
            job = {"token": sim_account["token"], "symbol": symbol}
        else:
            credentials = BrokerCredentials(
                login=sim_account["email"], password=sim_account["password"]
            )
            loginid = str(sim_account["user_id"])
            job = {
                "email": sim_account["email"],
                "password": sim_account["password"],
                "symbol": signal["asset"],
            }
        sealed = cipher.seal(account_id, kind, credentials)
        account = BrokerAccount(
            id=account_id,
            owner_id=new_id(),
            kind=kind,
            label="bench",
            currency="USD",
            loginid=loginid,
            ciphertext=sealed.ciphertext,
            nonce=sealed.nonce,
            key_id=sealed.key_id,
            balance_type=None if kind == "deriv" else "practice",
            created_at=now,
        )
        await write_broker_account(redis, topology, account)
        mine = count // accounts + (1 if i < count % accounts else 0)
        subs = [
            Subscription(
                channel_id=channel_id,
                subscriber_id=new_id(),
                broker_account_id=account.id,
                stake_mode="fixed",
                stake=Decimal(str(signal["stake"])),
                max_stake=Decimal("100"),
                created_at=now,
                expires_at=now + timedelta(days=30),
            )
            for _ in range(mine)
        ]
        await write_subscriptions(redis, topology, subs, account)
        baseline.extend(
            {
                "kind": kind,
                **job,
                "stake": signal["stake"],
                "direction": signal["direction"],
                "duration": signal["expiry_seconds"],
            }
            for _ in range(mine)
        )
    await redis.aclose()
    return baseline
