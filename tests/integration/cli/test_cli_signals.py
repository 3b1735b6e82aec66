"""`copier signal send|stream|watch` over the live API (no fan-out services needed)."""

from __future__ import annotations

import asyncio
import json

from nats.aio.client import Client as NATS

from apps.core.messages import signal_decoder
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.live_api import Api
from tests.integration.cli.conftest import Cli

SEND = ("--asset", "R_100", "--call", "--expiry", "60", "--stake", "2")


async def test_send_prints_the_signal_id_and_refuses_wrong_channels(cli: Cli, http: Api) -> None:
    owner = await http.user("provider", "owner")
    outsider = await http.user("provider", "outsider")
    channel = await http.channel(owner)
    assert "not logged in" in await cli.fails("signal", "send", "-c", channel, *SEND)

    await cli.login(owner)
    signal_id = (await cli.ok("signal", "send", "-c", channel, *SEND)).stdout.strip()
    stored = await http.ok("GET", f"/api/v1/signals/{signal_id}", owner)
    assert (stored["asset"], stored["direction"], stored["stake"]) == ("R_100", "CALL", "2")
    accepted = await cli.json("signal", "send", "-c", channel, "--asset", "EURUSD", "--put")
    assert accepted["channel_id"] == channel and accepted["signal_id"] > signal_id

    assert "channel not found" in await cli.fails("signal", "send", "-c", "nope", *SEND)
    assert "unknown asset" in await cli.fails(
        "signal", "send", "-c", channel, "--asset", "NOPE", "--call"
    )
    usage = await cli.run("signal", "send", "-c", channel, "--asset", "R_100")
    assert usage.exit_code == 2 and "--call or --put" in usage.stderr

    await cli.login(outsider)
    message = await cli.fails("signal", "send", "-c", channel, *SEND)
    assert "owner and its delegates" in message and "forbidden" in message


async def test_send_takes_an_expiry_tolerance_within_0_to_300_seconds(
    cli: Cli, http: Api, nc: NATS, settings: Settings
) -> None:
    owner = await http.user("provider", "owner")
    channel = await http.channel(owner)
    await cli.login(owner)
    await cli.ok("signal", "send", "-c", channel, *SEND, "--tolerance", "15")
    await cli.ok("signal", "send", "-c", channel, *SEND)
    stream = Topology(settings.namespace).stream("SIGNALS")
    js = nc.jetstream()
    sent = [signal_decoder.decode((await js.get_msg(stream, seq)).data) for seq in (1, 2)]
    assert [s.expiry_tolerance_seconds for s in sent] == [15, None]

    usage = await cli.run("signal", "send", "-c", channel, *SEND, "--tolerance", "301")
    assert usage.exit_code == 2 and "--tolerance" in usage.stderr and "300" in usage.stderr


async def test_stream_sends_100_signals_in_order_over_one_socket(cli: Cli, http: Api) -> None:
    owner = await http.user("provider", "owner")
    channel = await http.channel(owner)
    await cli.login(owner)
    lines = [
        json.dumps(
            {
                "asset": "R_100",
                "direction": "put" if i % 2 else "CALL",
                "expiry": 60,
                "stake": "1.5",
                "client_id": f"s{i}",
            }
        )
        for i in range(1, 101)
    ]
    result = await cli.ok("signal", "stream", "-c", channel, input="\n".join(lines) + "\n")
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["line"] for a in answers] == list(range(1, 101))
    assert {a["type"] for a in answers} == {"accepted"}, answers[:3]
    ids = [a["signal_id"] for a in answers]
    assert ids == sorted(ids) and len(set(ids)) == 100

    stored = await http.ok("GET", f"/api/v1/channels/{channel}/signals?limit=200", owner)
    assert [s["client_id"] for s in reversed(stored)] == [f"s{i}" for i in range(1, 101)]
    assert {s["stake"] for s in stored} == {"1.5"}


async def test_stream_answers_bad_lines_in_place(cli: Cli, http: Api) -> None:
    owner = await http.user("provider", "owner")
    channel = await http.channel(owner)
    other = await http.channel(await http.user("provider", "other"))
    await cli.login(owner)
    good = {"asset": "R_100", "direction": "CALL", "expiry_seconds": 60, "stake": 1}
    lines = [
        "this is not json",
        json.dumps({**good, "channel_id": other}),  # not ours
        "",
        json.dumps({**good, "stake": "abc"}),
        json.dumps({**good, "surprise": 1}),
        json.dumps(good),
    ]
    result = await cli.run("signal", "stream", "-c", channel, input="\n".join(lines) + "\n")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: 4 of 5 signals were not accepted"
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(a["line"], a["type"]) for a in answers] == [
        (1, "error"),
        (2, "error"),
        (4, "error"),
        (5, "error"),
        (6, "accepted"),
    ]
    assert answers[0]["error"]["code"] == "invalid_input"
    assert answers[1]["error"]["code"] == "forbidden"
    # Frames the API cannot decode are answered without a ref; still on the right line.
    assert answers[2]["error"]["code"] == "invalid_request" and "stake" in str(answers[2])
    assert answers[3]["error"]["code"] == "invalid_request" and "surprise" in str(answers[3])


async def test_watch_shows_signals_as_they_arrive(cli: Cli, http: Api) -> None:
    owner = await http.user("provider", "owner")
    channel = await http.channel(owner)
    stranger = await http.user("provider", "stranger")
    await cli.login(owner)

    watching = asyncio.create_task(
        cli.run("signal", "watch", "-c", channel, "--json", "--max-events", "2", "--timeout", "120")
    )
    # Signals go out until the watcher has shown two: it may connect after the first ones.
    sent = []
    while not watching.done():
        reply = await http.ok(
            "POST",
            f"/api/v1/channels/{channel}/signals",
            owner,
            json={"asset": "R_100", "direction": "CALL", "expiry_seconds": 60, "stake": "1"},
        )
        sent.append(reply["signal_id"])
        await asyncio.wait({watching}, timeout=0.5)
    result = await watching
    assert result.exit_code == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == 2 and {e["signal_id"] for e in events} <= set(sent)
    assert {e["channel_id"] for e in events} == {channel}

    # Time-boxed human view; a stranger may not watch.
    human = await cli.ok("signal", "watch", "--timeout", "1")
    assert "executions and outcomes" in human.stdout
    await cli.login(stranger)
    assert "may not watch" in await cli.fails("signal", "watch", "-c", channel, "--timeout", "1")
    assert "no channels" in await cli.fails("signal", "watch", "--timeout", "1")
