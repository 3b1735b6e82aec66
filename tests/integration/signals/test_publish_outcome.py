"""A signal whose PubAck is late is one signal, never two.

The API reaches NATS through a proxy that can hold NATS's replies back: the publish
arrives and JetStream stores it, but the API hears nothing — as when the server's disk
stalls. A timeout must not be taken for "nothing was sent": a retry that got a new signal
id would be a second signal, and every subscriber would trade twice. And a signal whose
outcome the API never learnt still gets its record, from the ledger."""

from __future__ import annotations

import asyncio
import time

from nats.aio.client import Client as NATS

from apps.core.messages import signal_decoder
from apps.core.settings import Settings
from apps.ledger.main import run as run_ledger
from tests.fixtures.holding_proxy import (  # noqa: F401  (the fixtures)
    HoldingProxy,
    api_settings_through_proxy,
    nats_proxy,
)
from tests.fixtures.live_api import Api, User
from tests.fixtures.waiting import wait_for
from tests.integration.signals.test_signal_intake import SIGNAL, stream_signals


async def provider_on_hold(http: Api, proxy: HoldingProxy) -> tuple[User, str]:
    """A provider, the path to signal its channel, and NATS's replies held from now on."""
    owner = await http.user("provider", "owner")
    channel = await http.channel(owner)
    proxy.hold()
    return owner, f"/api/v1/channels/{channel}/signals"


async def stored_ids(nc: NATS, settings: Settings) -> list[str]:
    return [signal_decoder.decode(m.data).signal_id for m in await stream_signals(nc, settings)]


async def test_a_late_puback_is_waited_for_by_publishing_again_under_the_same_id(
    http: Api, nc: NATS, settings: Settings, proxy: HoldingProxy
) -> None:
    owner, path = await provider_on_hold(http, proxy)
    started = time.monotonic()
    sending = asyncio.create_task(http.call("POST", path, owner, json=SIGNAL))

    async def stored() -> list[str]:
        return await stored_ids(nc, settings)

    # JetStream holds it; the API hears nothing.
    first = await wait_for(stored, what="the signal in JetStream", every=0.02)
    # The first attempt's PubAck is lost for good: it comes after its 2 s timeout. The
    # second attempt (same Nats-Msg-Id) is answered once the replies flow again.
    await asyncio.sleep(max(0.0, started + 2.5 - time.monotonic()))
    proxy.release()
    answer = await asyncio.wait_for(sending, 30)
    assert answer.status_code == 202, answer.text
    assert [answer.json()["signal_id"]] == first == await stored_ids(nc, settings)


async def test_an_unanswered_publish_says_so_and_the_retry_gets_the_same_signal(
    http: Api, nc: NATS, settings: Settings, proxy: HoldingProxy
) -> None:
    owner, path = await provider_on_hold(http, proxy)
    keyed, bare = await asyncio.gather(
        http.call("POST", path, owner, json={**SIGNAL, "client_id": "click-1"}),
        http.call("POST", path, owner, json=SIGNAL),
    )
    for answer in (keyed, bare):
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "outcome_unknown"
    assert "same client_id" in keyed.json()["error"]["message"]
    assert "twice" in bare.json()["error"]["message"]
    signal_id = keyed.json()["error"]["details"]["signal_id"]
    # Both were stored, once each (each request's second attempt was a duplicate).
    assert sorted(await stored_ids(nc, settings)) == sorted(
        [signal_id, bare.json()["error"]["details"]["signal_id"]]
    )

    proxy.release()
    retry = await http.call("POST", path, owner, json={**SIGNAL, "client_id": "click-1"})
    assert retry.status_code == 202, retry.text
    assert (retry.json()["signal_id"], retry.json()["duplicate"]) == (signal_id, True)
    assert len(await stored_ids(nc, settings)) == 2  # no second signal for click-1

    async def recorded(signal_id: str) -> bool:
        found = await http.call("GET", f"/api/v1/signals/{signal_id}", owner)
        return bool(found.status_code == 200)

    # Confirmed now, so it has its record.
    await wait_for(lambda: recorded(signal_id), what="the keyed signal's record")
    # Nobody asks for the bare one again, and the API never heard that it was stored;
    # the subscribers trade it all the same. The ledger records it from the stream.
    bare_id = bare.json()["error"]["details"]["signal_id"]
    assert not await recorded(bare_id)
    stop = asyncio.Event()
    ledger = asyncio.create_task(run_ledger(settings, stop))
    try:
        await wait_for(lambda: recorded(bare_id), what="the ledger's record of the bare signal")
    finally:
        stop.set()
        await asyncio.wait_for(ledger, 30)


async def test_nats_down_is_a_503_with_retry_after(http: Api, proxy: HoldingProxy) -> None:
    owner = await http.user("provider", "owner")
    channel = await http.channel(owner)
    proxy.cut()
    answer = await http.call("POST", f"/api/v1/channels/{channel}/signals", owner, json=SIGNAL)
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["retry-after"]) > 0
    assert answer.json()["error"]["code"] in {"unavailable", "outcome_unknown"}
    # Routes that need no NATS go on answering.
    assert (await http.call("GET", f"/api/v1/channels/{channel}")).status_code == 200
