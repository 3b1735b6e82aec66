"""One Deriv WebSocket peer of the simulator: its login and its subscription streams.

The writing (synchronous, in order) is :class:`apps.brokers.simulation.Peer`'s; this adds
what Deriv keeps per connection: the authorised loginid and the streams, indexed so an
event finds its listeners without a scan. A stream message is spliced from the stream's
pre-encoded envelope: byte for byte the reply encoding would give.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from apps.brokers.deriv.simulator.wire import envelope
from apps.brokers.simulation import Peer, encode

_subscription_order = itertools.count()


@dataclass(eq=False)
class Subscription:
    id: str
    kind: str  # msg_type of the stream
    request: dict[str, Any]
    contract_id: int | None = None
    order: int = field(default_factory=lambda: next(_subscription_order))
    _head: str | None = field(default=None, repr=False)
    _tail: str = field(default="", repr=False)

    def frame(self, body_json: str) -> str:
        """The stream message for an encoded body: exactly what encoding
        ``reply(request, kind, body, self.id)`` gives, with the envelope encoded once."""
        if self._head is None:
            head = encode(envelope(self.request, self.kind))  # '{"echo_req":...}'
            self._head = f"{head[:-1]},{encode(self.kind)}:"
            self._tail = f',"subscription":{encode({"id": self.id})}}}'
        return self._head + body_json + self._tail


@dataclass(eq=False)
class Connection(Peer):
    """One WebSocket peer, with its login and its streams."""

    loginid: str | None = None
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    # Indexes over ``subscriptions``, so an event finds its streams without a scan.
    balance_streams: dict[str, Subscription] = field(default_factory=dict)
    all_contracts_streams: dict[str, Subscription] = field(default_factory=dict)
    contract_streams: dict[int, dict[str, Subscription]] = field(default_factory=dict)
    proposal_streams: int = 0

    def add_stream(self, sub: Subscription) -> None:
        self.subscriptions[sub.id] = sub
        if sub.kind == "balance":
            self.balance_streams[sub.id] = sub
        elif sub.kind == "proposal":
            self.proposal_streams += 1
        elif sub.kind == "proposal_open_contract":
            if sub.contract_id is None:
                self.all_contracts_streams[sub.id] = sub
            else:
                self.contract_streams.setdefault(sub.contract_id, {})[sub.id] = sub

    def end_stream(self, sub_id: str) -> Subscription | None:
        sub = self.subscriptions.pop(sub_id, None)
        if sub is None:
            return None
        if sub.kind == "balance":
            del self.balance_streams[sub_id]
        elif sub.kind == "proposal":
            self.proposal_streams -= 1
        elif sub.kind == "proposal_open_contract":
            if sub.contract_id is None:
                del self.all_contracts_streams[sub_id]
            else:
                streams = self.contract_streams[sub.contract_id]
                del streams[sub_id]
                if not streams:
                    del self.contract_streams[sub.contract_id]
        return sub

    def end_all_streams(self) -> None:
        self.subscriptions.clear()
        self.balance_streams.clear()
        self.all_contracts_streams.clear()
        self.contract_streams.clear()
        self.proposal_streams = 0

    def streams_of(self, contract_id: int) -> list[Subscription]:
        """This connection's proposal_open_contract streams that follow the contract."""
        own = self.contract_streams.get(contract_id)
        if own is None:
            return list(self.all_contracts_streams.values())
        if not self.all_contracts_streams:
            return list(own.values())
        both = [*self.all_contracts_streams.values(), *own.values()]
        return sorted(both, key=_opened)  # in the order they were opened


def _opened(sub: Subscription) -> int:
    return sub.order
