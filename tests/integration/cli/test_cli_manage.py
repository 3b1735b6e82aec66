"""`copier channels|delegates|subs|brokers` with the API's rules and messages."""

from __future__ import annotations

import pytest

from apps.core.settings import Settings
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import Api
from tests.integration.cli.conftest import Cli


@pytest.fixture
def api_settings(pipeline_settings: Settings) -> Settings:
    # Broker accounts are verified on the Deriv simulator.
    return pipeline_settings


async def test_channel_lifecycle_and_delegates(cli: Cli, http: Api) -> None:
    owner = await http.user("provider", "owner")
    other = await http.user("provider", "other")
    trader = await http.user("provider", "trader")
    await cli.login(owner)

    channel = (
        await cli.ok("channels", "create", "--name", "Scalps", "--price", "25")
    ).stdout.strip()
    listed = await cli.json("channels", "list", "--mine")
    assert [(c["id"], c["name"], c["plan"]["price"]) for c in listed] == [(channel, "Scalps", "25")]
    assert "Scalps" in (await cli.ok("channels", "list")).stdout

    updated = await cli.json("channels", "update", channel, "--price", "30", "--name", "Scalps 2")
    assert (updated["name"], updated["plan"]["price"], updated["plan"]["period_days"]) == (
        "Scalps 2",
        "30",
        30,
    )
    assert "nothing to change" in await cli.fails("channels", "update", channel)
    # The API's own validation message comes through.
    refused = await cli.fails("channels", "update", channel, "--period-days", "0")
    assert refused == "Period (days) must be at least 1 (validation_failed)"

    view = await cli.json("delegates", "add", channel, trader.email)
    assert [d["id"] for d in view["delegates"]] == [trader.id]
    assert trader.email in (await cli.ok("delegates", "add", channel, trader.email)).stdout

    # Someone else's channel: the API's refusal, one line.
    await cli.login(other)
    assert await cli.fails("channels", "update", channel, "--name", "mine now")
    assert await cli.fails("delegates", "add", channel, other.email)
    assert await cli.fails("channels", "delete", channel, "--yes")

    await cli.login(owner)
    listed = await cli.json("delegates", "list", channel)
    assert [d["email"] for d in listed["delegates"]] == [trader.email]
    assert "not a delegate" in await cli.fails("delegates", "remove", channel, other.email)
    await cli.ok("delegates", "remove", channel, trader.email)
    assert (await cli.json("delegates", "list", channel))["delegates"] == []
    assert await cli.fails("channels", "show", "no-such-channel")
    assert "cancelled" in await cli.fails("channels", "delete", channel, input="n\n")
    await cli.ok("channels", "delete", channel, "--yes")
    assert await cli.json("channels", "list", "--mine") == []


async def test_broker_accounts_and_subscriptions(cli: Cli, http: Api, sim: SimHandle) -> None:
    owner = await http.user("provider", "owner")
    channel = await http.channel(owner)
    subscriber = await http.user("subscriber", "sub")
    await cli.login(subscriber)
    assert await cli.json("subs", "list") == []

    spare = await cli.json(
        "brokers", "create", "--label", "spare", "--token", (await sim.account()).token
    )
    assert spare["verified_at"] is not None
    table = (await cli.ok("brokers", "list")).stdout
    assert "spare" in table and spare["id"] in table
    await cli.ok("brokers", "delete", spare["id"], "--yes")
    assert await cli.json("brokers", "list") == []

    account = await sim.account(balance="250")
    created = await cli.json(
        "brokers", "create", "--label", "main", COPIER_BROKER_TOKEN=account.token
    )
    assert (created["currency"], created["loginid"]) == ("USD", account.login)
    assert created["verified_at"] is not None
    # The broker's refusal of a bad token, as the API words it; nothing is saved.
    refused = await cli.fails("brokers", "create", "--label", "bad", "--token", "no-such-token")
    assert "not linked" in refused and "{" not in refused
    assert [a["id"] for a in await cli.json("brokers", "list")] == [created["id"]]

    sub = await cli.json(
        "subs", "create", channel, "--account", created["id"], "--stake", "2", "--max-stake", "5"
    )
    assert (sub["channel_id"], sub["stake"], sub["status"]) == (channel, "2", "active")
    paused = await cli.json("subs", "update", sub["id"], "--pause", "--daily-loss-limit", "50")
    assert (paused["paused"], paused["daily_loss_limit"]) == (True, "50")
    # The API's risk rules: a stake above the cap is refused with its message.
    assert "stake" in await cli.fails("subs", "update", sub["id"], "--stake", "9")
    assert "nothing to change" in await cli.fails("subs", "update", sub["id"])
    # The limits beyond the stake, set and removed from the command line.
    limited = await cli.json(
        "subs", "update", sub["id"], "--balance-floor", "500", "--max-drawdown", "20",
        "--directions", "call", "--reverse", "--round-up",
    )  # fmt: skip
    assert (
        limited["balance_floor"],
        limited["max_drawdown_percent"],
        limited["directions"],
        limited["reverse"],
        limited["round_up_to_min_stake"],
    ) == ("500", "20", ["CALL"], True, True)
    cleared = await cli.json(
        "subs", "update", sub["id"], "--balance-floor", "none", "--directions", "both"
    )
    assert (cleared["balance_floor"], cleared["directions"]) == (None, [])
    assert "CALL, PUT or both" in await cli.fails("subs", "update", sub["id"], "--directions", "UP")

    await cli.login(owner)
    subscribers = await cli.json("channels", "subscribers", channel)
    assert [s["subscription_id"] for s in subscribers] == [sub["id"]]
    assert await cli.fails("subs", "delete", sub["id"], "--yes")  # not the owner's

    await cli.login(subscriber)
    await cli.ok("subs", "delete", sub["id"], "--yes")
    await cli.ok("brokers", "delete", created["id"], "--yes")


async def test_listing_stored_subscriptions_and_verified_accounts(
    cli: Cli, http: Api, sim: SimHandle
) -> None:
    channel = await http.channel(await http.user("provider", "owner"))
    await cli.login(await http.user("subscriber", "sub"))
    account = await sim.account(balance="250")
    created = await cli.json("brokers", "create", "--label", "m", "--token", account.token)
    await cli.ok("subs", "create", channel, "--account", created["id"])
    assert [b["id"] for b in await cli.json("brokers", "list")] == [created["id"]]
    assert [s["channel_id"] for s in await cli.json("subs", "list")] == [channel]
