"""A local Deriv API v3 server: the embedded stack's default broker and the tests' truth.

It speaks the WebSocket protocol of shared/brokers/deriv.md on ``/websockets/v3`` and the
admin HTTP API every simulator shares (:mod:`apps.brokers.simulation`) on the same port.
Every contract sold is kept in a ledger: the record against which "placed exactly once"
is checked. With a data dir its state is journalled and survives a restart.

Modules: :mod:`.config` (accounts, symbols, limits), :mod:`.contracts` (accounts,
contracts, priced terms), :mod:`.market` (prices), :mod:`.wire` (reply shapes),
:mod:`.connection` (a peer's login and streams), :mod:`.handlers` (the API calls),
:mod:`.broker` (state, booking, settlement, streams), :mod:`.journal` (durable records),
:mod:`.server` (running it).
"""

from apps.brokers.deriv.simulator.broker import DerivSimulator
from apps.brokers.deriv.simulator.config import AccountConfig, SimConfig, SymbolConfig, load_config
from apps.brokers.deriv.simulator.server import main, running_simulator, serve_forever
from apps.brokers.simulation import Faults, RunningSimulator

__all__ = [
    "AccountConfig",
    "DerivSimulator",
    "Faults",
    "RunningSimulator",
    "SimConfig",
    "SymbolConfig",
    "load_config",
    "main",
    "running_simulator",
    "serve_forever",
]
