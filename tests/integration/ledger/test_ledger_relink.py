"""Refused credentials in the ledger (apps.ledger.relink) on the MongoDB wire server and
Valkey: one state change however many refusals, repaired after a stop between steps,
and refusals of credentials replaced since ignored."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from apps.api.models import BrokerAccount, Subscription
from apps.api.subscriptions.projection import write_subscriptions
from apps.core.db import connect_db
from apps.core.messages import Execution, ExecutionState
from apps.core.redis import connect_redis
from apps.core.routing import unpack_record
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.ledger.relink import mark_refused_accounts

REASON = "InvalidToken: The token is invalid."
PAUSE = f"broker account needs re-linking: {REASON}"


class World:
    def __init__(self, settings: Settings) -> None:
        self.client, self.engine = connect_db(settings.mongodb_uri, settings.mongodb_database)
        self.db = self.client[settings.mongodb_database]
        self.redis: Redis = connect_redis(settings.redis_url)
        self.topology = Topology(settings.namespace)

    async def account(self, verified_at: datetime | None = None) -> BrokerAccount:
        return await self.engine.save(
            BrokerAccount(
                owner_id="u1",
                kind="deriv",
                label="sim",
                currency="USD",
                verified_at=verified_at,
                ciphertext=b"x",
                nonce=b"n",
                key_id="k",
                created_at=datetime.now(UTC),
            )
        )

    async def subscriptions(
        self, account: BrokerAccount, count: int, *, paused: bool = False
    ) -> list[Subscription]:
        now = datetime.now(UTC)
        made = [
            await self.engine.save(
                Subscription(
                    channel_id=f"ch{i % 2}",
                    subscriber_id="u1",
                    broker_account_id=account.id,
                    stake_mode="fixed",
                    stake=Decimal(1),
                    max_stake=Decimal(5),
                    paused=paused,
                    created_at=now,
                    expires_at=now + timedelta(days=30),
                )
            )
            for i in range(count)
        ]
        await write_subscriptions(self.redis, self.topology, made, account)
        return made

    async def mark(self, executions: list[Execution]) -> list[str]:
        return await mark_refused_accounts(self.db, self.redis, self.topology, executions)

    async def stored(self, account: BrokerAccount) -> dict[str, Any]:
        found = await self.db["broker_accounts"].find_one({"_id": account.id})
        assert found is not None
        return found  # type: ignore[no-any-return]

    async def routed(self, subscription: Subscription) -> tuple[bool, str]:
        raw = await self.redis.hget(
            self.topology.routing_key(subscription.channel_id), subscription.id
        )
        assert raw is not None
        record = unpack_record(raw)
        return record.paused, record.paused_reason


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[World]:
    made = World(settings)
    try:
        yield made
    finally:
        await made.redis.aclose()
        made.client.close()


def refused(subscription: Subscription, signal: str, at: float | None = None) -> Execution:
    return Execution(
        order_id=f"{signal}.{subscription.id}",
        signal_id=signal,
        channel_id=subscription.channel_id,
        subscription_id=subscription.id,
        user_id="u1",
        state=ExecutionState.REJECTED,
        at=time.time() if at is None else at,
        broker_kind="deriv",
        reason=REASON,
        account_refused=True,
    )


async def test_many_refusals_make_one_change_and_pause_only_the_subscribers_choice_apart(
    world: World,
) -> None:
    account = await world.account()
    copying = await world.subscriptions(account, 6)
    held = (await world.subscriptions(account, 1, paused=True))[0]
    others = await world.subscriptions(await world.account(), 2)
    executions = [refused(s, f"sig{n}") for n in range(300) for s in copying]
    # A rejection that is not a refusal of the credentials marks nothing.
    executions.append(msgspec.structs.replace(refused(others[0], "sig0"), account_refused=False))

    assert await world.mark(executions) == [account.id]
    assert await world.mark(executions) == []  # redelivered: no second change

    stored = await world.stored(account)
    assert stored["status"] == "needs_relink" and stored["relink_reason"] == REASON
    since = stored["relink_since"]
    for subscription in copying:
        assert await world.routed(subscription) == (True, PAUSE)
    assert await world.routed(held) == (True, "")  # the subscriber's pause, left alone
    for subscription in others:
        assert await world.routed(subscription) == (False, "")
    assert (await world.stored(account))["relink_since"] == since


async def test_a_stop_between_steps_is_finished_by_the_redelivery(world: World) -> None:
    account = await world.account()
    copying = await world.subscriptions(account, 3)
    # The ledger marked the account, then stopped before pausing anything.
    await world.db["broker_accounts"].update_one(
        {"_id": account.id}, {"$set": {"status": "needs_relink", "relink_reason": REASON}}
    )
    assert await world.mark([refused(copying[0], "sig1")]) == []
    for subscription in copying:
        assert await world.routed(subscription) == (True, PAUSE)
    rows = await world.db["subscriptions"].find({"broker_account_id": account.id}).to_list(None)
    assert {(r["paused"], r["paused_reason"]) for r in rows} == {(True, PAUSE)}


async def test_a_refusal_of_credentials_replaced_since_changes_nothing(world: World) -> None:
    account = await world.account(verified_at=datetime.now(UTC))
    copying = await world.subscriptions(account, 2)
    before_the_relink = time.time() - 60
    assert await world.mark([refused(s, "sig1", at=before_the_relink) for s in copying]) == []
    assert (await world.stored(account))["status"] == "active"
    for subscription in copying:
        assert await world.routed(subscription) == (False, "")
