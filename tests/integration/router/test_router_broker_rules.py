"""The router against real NATS and Redis with a channel whose subscribers trade at Deriv
and at IQ Option: each broker's orders on its own subjects in its own terms, and a signal
one broker does not offer refused for that broker's subscribers only, with the reason."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import msgspec
from nats.aio.client import Client as NATS

from apps.core.brokers.iqoption import LegalExpiry, choose_expiry, legal_expiries
from apps.core.messages import (
    ExecutionBatch,
    Order,
    execution_event_decoder,
    order_batch_decoder,
)
from apps.core.routing import RoutingRecord
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.factories import make_signal
from tests.fixtures.waiting import wait_for
from tests.integration.router.test_router_fanout import (
    make_record,
    running_router,
    send,
    store,
    stream_messages,
)


def mixed_channel(channel: str, n: int) -> list[RoutingRecord]:
    """Even subscribers at Deriv, odd ones at IQ Option (each kind its own accounts)."""
    return [
        make_record(i, channel)
        if i % 2 == 0
        else make_record(
            i,
            channel,
            broker_kind="iqoption",
            broker_account_id=f"iq{i % 10}",
            credentials_ref=f"iq{i % 10}",
        )
        for i in range(n)
    ]


async def routed(
    nc: NATS, topology: Topology
) -> tuple[dict[str, list[tuple[str, Order]]], dict[str, str]]:
    """The orders per subject (subscription id, order) and the refusals' reasons."""
    by_subject: dict[str, list[tuple[str, Order]]] = {}
    for message in await stream_messages(nc, topology.stream("ORDERS")):
        batch = order_batch_decoder.decode(message.data)
        by_subject.setdefault(message.subject, []).extend(
            (o.subscription_id, o) for o in batch.orders
        )
    reasons = {
        e.subscription_id: e.reason or ""
        for m in await stream_messages(nc, topology.stream("EXECUTIONS"))
        if isinstance(event := execution_event_decoder.decode(m.data), ExecutionBatch)
        for e in event.executions
    }
    return by_subject, reasons


async def test_each_broker_gets_its_orders_on_its_subjects_in_its_own_terms(
    nc: NATS, settings: Settings
) -> None:
    topology = Topology(settings.namespace)
    records = mixed_channel("mix1", 40)
    records[1] = msgspec.structs.replace(
        records[1], stake=Decimal("0.50")
    )  # below IQ Option's minimum
    await store(settings, "mix1", records)
    signal = make_signal("mix1")  # EURUSD, 60 s: both brokers offer it
    chosen = choose_expiry(signal.created_at, 60, settings.expiry_tolerance_seconds)
    assert isinstance(chosen, LegalExpiry)

    async with running_router(replace(settings, order_group_size=8)):
        await send(nc, topology, signal)

        async def all_routed() -> bool:
            by_subject, reasons = await routed(nc, topology)
            return sum(map(len, by_subject.values())) + len(reasons) == 40

        await wait_for(all_routed, what="every subscriber routed")
    by_subject, reasons = await routed(nc, topology)
    deriv_subject = topology.order_subject("deriv", 0)
    iq_subject = topology.order_subject("iqoption", 0)
    assert set(by_subject) == {deriv_subject, iq_subject}
    assert iq_subject.split(".")[-2:] == ["iqoption", "0"]
    deriv_orders = dict(by_subject[deriv_subject])
    iq_orders = dict(by_subject[iq_subject])
    assert sorted(deriv_orders) == [f"sub{i:06}" for i in range(0, 40, 2)]
    assert sorted(iq_orders) == [f"sub{i:06}" for i in range(3, 40, 2)]
    assert {o.broker_kind for o in deriv_orders.values()} == {"deriv"}
    assert {o.expiry_at for o in deriv_orders.values()} == {None}
    assert {o.broker_kind for o in iq_orders.values()} == {"iqoption"}
    assert {o.expiry_at for o in iq_orders.values()} == {chosen.at}
    assert chosen.at in {e.at for e in legal_expiries(signal.created_at)}
    assert reasons == {"sub000001": "stake 0.50 is below IQ Option's minimum of 1.00"}


async def test_an_asset_iq_option_does_not_offer_is_refused_for_its_subscribers_only(
    nc: NATS, settings: Settings
) -> None:
    topology = Topology(settings.namespace)
    await store(settings, "mix2", mixed_channel("mix2", 30))
    signal = make_signal("mix2", asset="R_100")

    async with running_router(settings):
        await send(nc, topology, signal)

        async def all_routed() -> bool:
            by_subject, reasons = await routed(nc, topology)
            return sum(map(len, by_subject.values())) + len(reasons) == 30

        await wait_for(all_routed, what="every subscriber routed")
    by_subject, reasons = await routed(nc, topology)
    assert list(by_subject) == [topology.order_subject("deriv", 0)]
    assert sorted(s for s, _ in by_subject[topology.order_subject("deriv", 0)]) == [
        f"sub{i:06}" for i in range(0, 30, 2)
    ]
    assert reasons == {f"sub{i:06}": "IQ Option does not offer R_100" for i in range(1, 30, 2)}
