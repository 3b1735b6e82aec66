"""`copier signal send` when the answer is lost: it asks again under the same client_id,
and the channel gets one signal, never two (the API's NATS replies held in a proxy)."""

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
from tests.fixtures.live_api import Http
from tests.integration.cli.conftest import Cli
from tests.integration.cli.test_cli_signals import SEND
from tests.integration.signals.test_signal_intake import stream_signals


async def test_send_asks_again_under_its_client_id_when_the_answer_is_lost(
    cli: Cli, http: Http, nc: NATS, settings: Settings, proxy: HoldingProxy
) -> None:
    owner = await http.user("provider", "owner")
    channel = await http.channel(owner)
    await cli.login(owner)
    # The API's two publishes for the first request go unanswered (503 outcome_unknown);
    # the replies flow again with the third, which the CLI's resend causes.
    proxy.hold()
    proxy.release_on(Topology(settings.namespace).signal_subject(channel).encode(), 3)
    result = await cli.ok("signal", "send", "-c", channel, *SEND)
    assert proxy.flowing.is_set()  # the resend was published (again, under the same id)
    stored = [signal_decoder.decode(m.data) for m in await stream_signals(nc, settings)]
    assert [s.signal_id for s in stored] == [result.stdout.strip()]
    assert stored[0].client_id is not None and stored[0].client_id.startswith("cli-")
