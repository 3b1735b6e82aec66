"""`copier login|logout|whoami` against the live API."""

from __future__ import annotations

import json
import stat

from apps.core.embedded import free_port
from tests.fixtures.live_api import Api
from tests.integration.cli.conftest import Cli


async def test_login_whoami_logout_keep_a_private_session(cli: Cli, http: Api) -> None:
    user = await http.user("provider", "trader")
    assert "not logged in" in await cli.fails("whoami")

    await cli.login(user)
    credentials = cli.config_dir / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600

    me = await cli.json("whoami")
    assert (me["email"], me["id"], me["account_type"]) == (user.email, user.id, "provider")
    human = (await cli.ok("whoami")).stdout
    assert user.email in human and "provider" in human

    await cli.ok("logout")
    assert "not logged in" in await cli.fails("whoami")


async def test_expired_access_token_is_refreshed_with_the_refresh_token(
    cli: Cli, http: Api
) -> None:
    user = await http.user("subscriber", "sub")
    await cli.login(user)
    credentials = cli.config_dir / "credentials.json"
    data = json.loads(credentials.read_text())
    session = next(iter(data["sessions"].values()))
    old_refresh = session["refresh_token"]
    session["access_token"] = "not-a-valid-token"
    credentials.write_text(json.dumps(data))

    assert (await cli.json("whoami"))["id"] == user.id
    session = next(iter(json.loads(credentials.read_text())["sessions"].values()))
    assert session["refresh_token"] != old_refresh  # rotated and kept

    # Once the server has ended the session, the CLI says to log in again.
    await cli.ok("logout")
    credentials.write_text(json.dumps(data))
    assert "log in again" in await cli.fails("whoami")


async def test_wrong_password_and_api_down_are_one_line_errors(cli: Cli, http: Api) -> None:
    user = await http.user("provider", "p")
    message = await cli.fails("login", "--email", user.email, "--password", "wrong-password")
    assert "invalid" in message.lower() or "password" in message.lower()

    down = f"http://127.0.0.1:{free_port()}"
    message = await cli.fails("login", "--email", user.email, "--password", "x", "--api", down)
    assert message == f"cannot reach the API at {down} — is the stack running? (copier up)"
    # Logged in, then the API goes away: the same one line from every command.
    await cli.login(user)
    credentials = cli.config_dir / "credentials.json"
    data = json.loads(credentials.read_text())
    data["sessions"][down] = {**next(iter(data["sessions"].values())), "api": down}
    credentials.write_text(json.dumps(data))
    assert "cannot reach the API" in await cli.fails("whoami", COPIER_API=down)
    assert "cannot reach the API" in await cli.fails("channels", "list", COPIER_API=down)
    assert "cannot reach the API" in await cli.fails(
        "signal", "send", "-c", "x", "--asset", "R_100", "--call", COPIER_API=down
    )


async def test_every_command_has_help_with_examples(cli: Cli) -> None:
    for command in (
        ["login"],
        ["whoami"],
        ["signal", "send"],
        ["signal", "stream"],
        ["signal", "watch"],
        ["channels", "create"],
        ["delegates", "add"],
        ["subs", "create"],
        ["brokers", "create"],
        ["ops", "streams"],
        ["ops", "trace"],
    ):
        result = await cli.ok(*command, "--help")
        assert "Example" in result.stdout, command
