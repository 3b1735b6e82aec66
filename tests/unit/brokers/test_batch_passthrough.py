"""A batch buy's passthrough: every contract traces back to its order, in few bytes."""

from __future__ import annotations

import json
from decimal import Decimal

from apps.brokers.base import BrokerAccount, OrderRequest
from apps.brokers.deriv.adapter import (
    BATCH_MAX_ORDERS,
    PASSTHROUGH_MAX_BYTES,
    DerivAdapter,
    batch_passthrough,
    order_of_contract,
)
from apps.core.assets import Expiry
from apps.core.ids import new_id
from apps.core.messages import order_id_for


def _request(order_id: str, signal_id: str, login: str) -> OrderRequest:
    return OrderRequest(
        order_id=order_id,
        signal_id=signal_id,
        channel_id=new_id(),
        account=BrokerAccount(token=f"tok-{login}", login=login),
        asset="R_100",
        direction="CALL",
        expiry=Expiry(amount=15),
        stake=Decimal("1"),
        valid_until=0.0,
    )


def test_the_copiers_orders_are_named_by_what_follows_their_signals_id() -> None:
    signal_id, channel_id = new_id(), new_id()
    orders = {f"CR{9_000_000 + i}": order_id_for(signal_id, new_id()) for i in range(3)}

    passthrough = batch_passthrough(signal_id, channel_id, orders)

    assert "order_ids" not in passthrough
    assert {login: order_of_contract(passthrough, login) for login in orders} == orders
    # Other ids are named whole; single buys name their order.
    odd = {"CR1": "order-1", "CR2": order_id_for(signal_id, "s2")}
    assert {
        k: order_of_contract(batch_passthrough(signal_id, channel_id, odd), k) for k in odd
    } == odd
    assert order_of_contract({"order_id": "o-7", "signal_id": signal_id}, "CR1") == "o-7"
    assert order_of_contract(passthrough, "CR404") is None


def test_a_full_batch_fits_derivs_passthrough_limit_with_long_loginids() -> None:
    signal_id, channel_id = new_id(), new_id()
    orders = {f"VRTC{i:012d}": order_id_for(signal_id, new_id()) for i in range(BATCH_MAX_ORDERS)}

    encoded = json.dumps(batch_passthrough(signal_id, channel_id, orders), separators=(",", ":"))

    assert len(encoded.encode()) <= PASSTHROUGH_MAX_BYTES


def test_batches_split_where_the_passthrough_would_not_fit() -> None:
    adapter = DerivAdapter("ws://127.0.0.1:9")  # never connects: batching is arithmetic
    signal_id = new_id()
    copier = [
        _request(order_id_for(signal_id, new_id()), signal_id, f"CR{i:07d}") for i in range(150)
    ]
    # Ids of another shape are named whole: fewer fit (each entry ~135 bytes: 25 of them).
    long_ids = [_request("x" * 120, signal_id, f"CR{i:07d}") for i in range(150)]

    # One odd id among the copier's: the batches name their orders whole (53-character
    # ids: ~68 bytes an entry, 49 of them).
    mixed = [_request("x" * 120, signal_id, "CR9999999"), *copier[1:]]

    for requests, most in ((copier, BATCH_MAX_ORDERS), (long_ids, 25), (mixed, 49)):
        batches = list(adapter._batches(requests, list(range(len(requests)))))
        assert [i for b in batches for i in b] == list(range(150))
        assert max(len(b) for b in batches) == most
        for b in batches:
            named = {requests[i].account.login: requests[i].order_id for i in b}
            passthrough = batch_passthrough(signal_id, requests[b[0]].channel_id, named)
            assert len(json.dumps(passthrough, separators=(",", ":"))) <= PASSTHROUGH_MAX_BYTES
