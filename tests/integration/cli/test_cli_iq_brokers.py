"""`copier brokers` with IQ Option accounts, verified at the real IQ Option simulator."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import httpx
import pytest

from apps.core.brokers.iqoption import login_form
from apps.core.settings import Settings
from tests.fixtures.iqoption_sim import IQOptionSim
from tests.fixtures.live_api import Api
from tests.integration.cli.conftest import Cli


@pytest.fixture
def api_settings(settings: Settings, iqoption_sim: IQOptionSim) -> Settings:
    return replace(
        settings,
        iqoption_login_url=iqoption_sim.login_url,
        iqoption_ws_url=iqoption_sim.ws_url,
        broker_verify_timeout_seconds=5.0,
    )


async def test_iq_option_accounts_are_linked_listed_and_refused_in_one_line(
    cli: Cli, http: Api, iqoption_sim: IQOptionSim
) -> None:
    await cli.login(await http.user("subscriber", "iqcli"))
    [account, by_ssid] = await iqoption_sim.create_accounts(2, balance="500")

    created = await cli.json(
        "brokers",
        "create",
        "--kind",
        "iqoption",
        "--label",
        "iq",
        "--login",
        account.email,
        "--balance",
        "real",
        COPIER_BROKER_PASSWORD=account.password,
    )
    assert (created["kind"], created["balance_type"], created["loginid"]) == (
        "iqoption",
        "real",
        str(account.user_id),
    )
    assert (created["currency"], Decimal(created["balance"]), bool(created["verified_at"])) == (
        "USD",
        500,
        True,
    )

    async with httpx.AsyncClient() as client:
        login = await client.post(
            iqoption_sim.login_url, data=login_form(by_ssid.email, by_ssid.password)
        )
    ssid = login.json()["data"]["ssid"]
    linked = await cli.json(
        "brokers", "create", "--kind", "iqoption", "--label", "iq2", COPIER_BROKER_SSID=ssid
    )
    assert (linked["balance_type"], linked["loginid"]) == ("practice", str(by_ssid.user_id))

    table = (await cli.ok("brokers", "list")).stdout
    assert "iqoption" in table and "real" in table and "practice" in table
    assert account.password not in table and ssid not in table
    verified = await cli.json("brokers", "verify", created["id"])
    assert Decimal(verified["balance"]) == 500

    # The broker's refusal, as the API words it, and what became of the account.
    message = await cli.fails(
        "brokers",
        "create",
        "--kind",
        "iqoption",
        "--label",
        "bad",
        "--login",
        account.email,
        "--password",
        "wrong-password",
    )
    assert message.startswith("the account was not linked: IQ Option refused this e-mail")
    # Nothing the broker refused is saved.
    assert len(await cli.json("brokers", "list")) == 2

    # The API's refusal of a body of the wrong shape: one line, nothing linked.
    assert "ssid" in await cli.fails(
        "brokers", "create", "--kind", "iqoption", "--label", "x", "--ssid", "short"
    )
    assert "e-mail and a password" in await cli.fails(
        "brokers", "create", "--kind", "iqoption", "--label", "x", "--login", account.email
    )
    assert len(await cli.json("brokers", "list")) == 2


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--kind", "binance"], "--kind is one of deriv, iqoption"),
        (["--kind", "deriv", "--ssid", "a" * 32], "--ssid: only for --kind iqoption"),
        (["--kind", "deriv", "--token", "t", "--balance", "real"], "--balance: only for"),
        (["--kind", "iqoption", "--token", "t"], "--login and --password, or --ssid"),
        (["--kind", "iqoption", "--ssid", "a" * 32, "--login", "a@b.c"], "not both"),
        (["--kind", "iqoption", "--ssid", "a" * 32, "--balance", "demo"], "--balance is one of"),
    ],
)
async def test_options_of_the_wrong_kind_are_a_usage_error(
    cli: Cli, http: Api, args: list[str], said: str
) -> None:
    await cli.login(await http.user("subscriber", "iqusage"))
    result = await cli.run("brokers", "create", "--label", "x", *args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], result.stderr
    assert await cli.json("brokers", "list") == []
