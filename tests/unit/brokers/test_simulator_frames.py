"""Stream messages are spliced from a pre-encoded envelope: byte for byte the reply."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from apps.brokers.deriv.simulator import Subscription, _encode, _reply


@pytest.mark.parametrize(
    "request_",
    [
        {"proposal_open_contract": 1, "subscribe": 1},
        {"proposal_open_contract": 1, "subscribe": 1, "req_id": 7},
        {"balance": 1, "subscribe": 1, "req_id": 3, "passthrough": {"a": ["é", 1.5, None]}},
        {"proposal_open_contract": 1, "contract_id": 250000001, "passthrough": {}},
    ],
)
def test_a_stream_frame_is_the_encoded_reply(request_: dict[str, Any]) -> None:
    kind = next(iter(request_))
    sub = Subscription(id="ab" * 16, kind=kind, request=request_)
    body = {"balance": Decimal("10.50"), "nested": {"x": [1, "two"]}, "profit": Decimal(0)}

    assert sub.frame(_encode(body)) == _encode(_reply(request_, kind, body, sub))
    assert sub.frame(_encode({})) == _encode(_reply(request_, kind, {}, sub))  # cached head
