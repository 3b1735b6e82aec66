"""`copier signal list` over the live API: a channel's signals and who sent each."""

from __future__ import annotations

from typing import Any

from tests.fixtures.live_api import Api
from tests.fixtures.waiting import wait_for
from tests.integration.cli.conftest import Cli

SIGNAL = {"asset": "R_100", "direction": "CALL", "expiry_seconds": 60, "stake": "2"}


async def test_list_names_the_owner_and_the_delegate_who_sent_each_signal(
    cli: Cli, http: Api
) -> None:
    owner = await http.user("provider", "paula")
    delegate = await http.user("provider", "tom")
    outsider = await http.user("provider", "olga")
    channel = await http.channel(owner)
    await http.delegate(owner, channel, delegate)
    path = f"/api/v1/channels/{channel}/signals"
    await http.ok("POST", path, owner, json=SIGNAL)
    await http.ok("POST", path, delegate, json={**SIGNAL, "direction": "PUT"})

    async def both() -> list[Any] | None:
        listed = await http.ok("GET", path, owner)
        return listed if len(listed) == 2 else None

    await wait_for(both, what="both signals recorded")
    await cli.login(owner)
    shown = (await cli.ok("signal", "list", "-c", channel)).stdout
    assert "Paula (owner)" in shown and "Tom (delegate)" in shown
    assert shown.index("Tom (delegate)") < shown.index("Paula (owner)")  # newest first
    items = await cli.json("signal", "list", "-c", channel, "--limit", "1")
    assert [s["sent_by"]["display_name"] for s in items] == ["Tom"]

    # Past signals are public once expired; current ones only to the channel's people.
    await cli.login(outsider)
    assert await cli.json("signal", "list", "-c", channel) == []
