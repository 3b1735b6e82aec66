"""Names of streams, consumers and subjects, optionally under a namespace.

Production runs with an empty namespace, so the names are exactly those in `nats/` and
what ops type into the `nats` CLI. Tests give every test its own namespace so that many
tests share one nats-server without seeing each other's messages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topology:
    namespace: str = ""

    def stream(self, base: str) -> str:
        """``SIGNALS`` → ``SIGNALS`` (or ``<ns>_SIGNALS`` in a namespace)."""
        return f"{self.namespace}_{base}" if self.namespace else base

    def subject(self, *parts: str) -> str:
        """``("signals", "c1")`` → ``signals.c1`` (or ``<ns>.signals.c1``)."""
        prefix = (self.namespace,) if self.namespace else ()
        return ".".join((*prefix, *parts))

    def key(self, *parts: str) -> str:
        """A Redis key: ``("routing", "c1")`` → ``copier:routing:c1`` (namespace-prefixed)."""
        return ":".join((self.namespace or "copier", *parts))

    def risk_key(self, subscription_id: str, epoch: float, counter: str) -> str:
        """A subscription's daily risk counter (``trades`` or ``loss``) for the UTC day of
        ``epoch``; the router reads them, the ledger adds realised losses."""
        day = time.strftime("%Y%m%d", time.gmtime(epoch))
        return self.key("risk", subscription_id, day, counter)

    # The subjects of the design, in one place.
    def signal_subject(self, channel_id: str) -> str:
        return self.subject("signals", channel_id)

    def order_subject(self, broker_kind: str, shard: int) -> str:
        return self.subject("orders", broker_kind, str(shard))

    def execution_subject(self, channel_id: str, signal_id: str) -> str:
        return self.subject("executions", channel_id, signal_id)
