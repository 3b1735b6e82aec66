"""What every broker simulator shares: the admin API, the ledger's journal, the fault
switches, rate limits, the peer writer and the server.

A simulator is the copier's stand-in for a real broker, speaking that broker's protocol
on one port beside an admin HTTP API of the same shape for every kind (accounts, ledger,
faults, limits, stats), so tests and the benchmark prove "placed exactly once" against
any broker the same way. A broker kind supplies, in ``apps/brokers/<kind>/simulator/``:

- its protocol: a :class:`SimulatedWebSocketBroker` (WebSocket path, a :class:`Peer`
  subclass, what each message does) that consults :class:`Faults` where its protocol
  answers: ``latency_ms`` before a reply, ``take_error`` and ``take_drop_mid_buy`` in its
  buy, ``market_closed`` in its validation, ``force_outcome`` in its settlement;
- its admin rows: accounts opened with the kind's credentials, ledger rows with the
  request each contract was bought by (:class:`SimulatedBroker`);
- its journal records, if its state should survive a restart (:class:`JournalFile`).

Dropped connections after N messages and idle timeouts are applied here, for every kind.
"""

from apps.brokers.simulation.admin import (
    HttpReply,
    HttpRequest,
    NewAccount,
    NewAccounts,
    OwnRoutes,
    SimulatedBroker,
    route,
)
from apps.brokers.simulation.faults import Faults
from apps.brokers.simulation.journal import JournalFile
from apps.brokers.simulation.limits import RateLimiter, RateLimits
from apps.brokers.simulation.peer import Peer, encode
from apps.brokers.simulation.server import (
    RunningSimulator,
    SimulatedWebSocketBroker,
    SimulatorApp,
    running,
    serve_until_stopped,
)

__all__ = [
    "Faults",
    "HttpReply",
    "HttpRequest",
    "JournalFile",
    "NewAccount",
    "NewAccounts",
    "OwnRoutes",
    "Peer",
    "RateLimiter",
    "RateLimits",
    "RunningSimulator",
    "SimulatedBroker",
    "SimulatedWebSocketBroker",
    "SimulatorApp",
    "encode",
    "route",
    "running",
    "serve_until_stopped",
]
