"""`copier signal send` when the answer is lost: it asks again under the same client_id,
and the channel gets one signal, never two (the API's NATS replies held in a proxy). Over
plain HTTP, and over the WebSocket that `--wait` uses."""

from __future__ import annotations

from nats.aio.client import Client as NATS

from apps.core.messages import signal_decoder
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.holding_proxy import (  # noqa: F401  (the fixtures)
    HoldingProxy,
    api_settings_through_proxy,
    nats_proxy,
)
from tests.fixtures.live_api import Api
from tests.fixtures.pipeline import Pipeline
from tests.integration.cli.conftest import Cli
from tests.integration.cli.test_cli_signals import SEND
from tests.integration.signals.test_signal_intake import stream_signals


async def sent_once(nc: NATS, settings: Settings, signal_id: str) -> None:
    stored = [signal_decoder.decode(m.data) for m in await stream_signals(nc, settings)]
    assert [s.signal_id for s in stored] == [signal_id]
    assert stored[0].client_id is not None and stored[0].client_id.startswith("cli-")


def lose_the_first_answer(proxy: HoldingProxy, settings: Settings, channel: str) -> None:
    """The API's two publishes for the first request go unanswered (outcome_unknown);
    the replies flow again with the third, which the CLI's resend causes."""
    proxy.hold()
    proxy.release_on(Topology(settings.namespace).signal_subject(channel).encode(), 3)


async def test_send_asks_again_under_its_client_id_when_the_answer_is_lost(
    cli: Cli, http: Api, nc: NATS, settings: Settings, proxy: HoldingProxy
) -> None:
    owner = await http.user("provider", "owner")
    channel = await http.channel(owner)
    await cli.login(owner)
    lose_the_first_answer(proxy, settings, channel)
    result = await cli.ok("signal", "send", "-c", channel, *SEND)
    assert proxy.flowing.is_set()  # the resend was published (again, under the same id)
    await sent_once(nc, settings, result.stdout.strip())


async def test_send_wait_asks_again_over_the_websocket_and_follows_the_one_signal(
    cli: Cli, http: Api, nc: NATS, settings: Settings, proxy: HoldingProxy, pipeline: Pipeline
) -> None:
    owner = await http.user("provider", "owner")
    channel = await http.channel(owner)  # no subscribers: the fan-out is done at once
    await pipeline.start("router")
    await pipeline.start("ledger")
    await pipeline.ready(nc)
    await cli.login(owner)
    lose_the_first_answer(proxy, settings, channel)
    result = await cli.json("signal", "send", "-c", channel, *SEND, "--wait", "--timeout", "60")
    assert proxy.flowing.is_set()
    assert result["type"] == "accepted" and result["duplicate"] is True
    assert result["progress"]["done"] and result["progress"]["counts"]["total"] == 0
    await sent_once(nc, settings, result["signal_id"])
