"""Every signal names who sent it: owner, delegate or admin, fixed when it was accepted.

The sender travels in the published signal, so the API's record and the ledger's (for a
signal whose API died after the PubAck) say the same; removing a delegate afterwards
rewrites nothing. Real API, NATS, Valkey and the MongoDB wire server."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from nats.aio.client import Client as NATS

from apps.core.db import connect_db
from apps.core.messages import Sender, SenderRole, encode, signal_decoder
from apps.core.nats import ensure_topology
from apps.core.records import SignalRecord
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.ledger.main import run
from tests.fixtures.factories import make_signal
from tests.fixtures.live_api import Api, User
from tests.fixtures.waiting import wait_for

SIGNAL = {"asset": "EURUSD", "direction": "CALL", "expiry_seconds": 60, "stake": "10"}


async def test_the_stream_the_list_and_the_signal_name_the_sender_and_a_removal_keeps_it(
    http: Api, nc: NATS, settings: Settings
) -> None:
    owner = await http.user("provider", "paula")
    delegate = await http.user("provider", "tom")
    channel = await http.channel(owner)
    await http.delegate(owner, channel, delegate)
    path = f"/api/v1/channels/{channel}/signals"
    by_owner = await http.ok("POST", path, owner, json=SIGNAL)
    by_delegate = await http.ok("POST", path, delegate, json={**SIGNAL, "client_id": "tom-1"})
    # A retried click is the same signal, with the same sender.
    await http.ok("POST", path, delegate, json={**SIGNAL, "client_id": "tom-1"})

    js = nc.jetstream()
    stream = Topology(settings.namespace).stream("SIGNALS")
    info = await js.stream_info(stream)
    published = [
        signal_decoder.decode((await js.get_msg(stream, seq)).data)
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
    ]
    assert [s.sent_by for s in published] == [
        Sender(id=owner.id, display_name="Paula", role=SenderRole.OWNER),
        Sender(id=delegate.id, display_name="Tom", role=SenderRole.DELEGATE),
    ]

    paula = {"id": owner.id, "display_name": "Paula", "role": "owner"}
    tom = {"id": delegate.id, "display_name": "Tom", "role": "delegate"}

    async def listed() -> list[Any] | None:
        items = await http.ok("GET", path, owner)
        return items if len(items) == 2 else None

    items = await wait_for(listed, what="both signals listed")
    assert [(s["signal_id"], s["sent_by"]) for s in items] == [
        (by_delegate["signal_id"], tom),
        (by_owner["signal_id"], paula),
    ]
    one = await http.ok("GET", f"/api/v1/signals/{by_delegate['signal_id']}", owner)
    assert one["sent_by"] == tom

    # The record was written when the signal was accepted: a removal rewrites nothing.
    await http.ok("DELETE", f"/api/v1/channels/{channel}/delegates/{delegate.id}", owner)
    again = await http.ok("GET", f"/api/v1/signals/{by_delegate['signal_id']}", owner)
    assert again["sent_by"] == tom


async def test_an_admin_who_is_neither_owner_nor_delegate_is_recorded_as_admin(
    http: Api, settings: Settings
) -> None:
    owner = await http.user("provider", "paula")
    channel = await http.channel(owner)
    mongo, engine = connect_db(settings.mongodb_uri, settings.mongodb_database)
    admin: User = await Api(http.client, engine).admin()
    mongo.close()
    sent = await http.ok("POST", f"/api/v1/channels/{channel}/signals", admin, json=SIGNAL)
    shown = await http.ok("GET", f"/api/v1/signals/{sent['signal_id']}", owner)
    assert shown["sent_by"] == {"id": admin.id, "display_name": "Admin", "role": "admin"}


async def test_the_ledgers_record_of_a_signal_whose_api_died_names_its_sender(
    nc: NATS, settings: Settings
) -> None:
    topology = Topology(settings.namespace)
    await ensure_topology(nc, topology)
    mongo, engine = connect_db(settings.mongodb_uri, settings.mongodb_database)
    # Published by an API that died before writing the record.
    orphan = msgspec.structs.replace(
        make_signal("ch1"),
        sent_by=Sender(id="u-tom", display_name="Tom", role=SenderRole.DELEGATE),
    )
    await nc.jetstream().publish(
        topology.signal_subject("ch1"), encode(orphan), headers={"Nats-Msg-Id": orphan.signal_id}
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop))
    try:
        record = await wait_for(
            lambda: engine.find_one(SignalRecord, SignalRecord.id == orphan.signal_id),
            what="the ledger's record of the signal",
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert record.sent_by == {"id": "u-tom", "display_name": "Tom", "role": "delegate"}
    mongo.close()
