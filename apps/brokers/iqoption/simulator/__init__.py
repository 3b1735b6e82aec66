"""A local IQ Option server: the embedded stack's second broker and the tests' truth.

It speaks the protocol of shared/brokers/iqoption.md: the HTTP login on ``/api/v2/login``
and the WebSocket API on ``/echo/websocket``, beside the admin HTTP API every simulator
shares (:mod:`apps.brokers.simulation`) on the same port. Every option sold is kept in a
ledger with the ``request_id`` it was bought by: the record against which "placed exactly
once" is checked. With a data dir its state is journalled and survives a restart.

Modules: :mod:`.config` (actives, timing), :mod:`.market` (prices), :mod:`.options`
(accounts, options and their shapes), :mod:`.wire` (message and login shapes),
:mod:`.connection` (a socket's login, heartbeats, subscriptions), :mod:`.handlers` (the
calls), :mod:`.broker` (state, login, booking, settlement), :mod:`.journal` (durable
records), :mod:`.server` (running it).
"""

from apps.brokers.iqoption.simulator.broker import IQOptionSimulator
from apps.brokers.iqoption.simulator.config import ActiveConfig, SimConfig, load_config
from apps.brokers.iqoption.simulator.server import (
    DEFAULT_PORT,
    login_url,
    main,
    running_simulator,
    serve_forever,
)
from apps.brokers.simulation import Faults, RunningSimulator

__all__ = [
    "DEFAULT_PORT",
    "ActiveConfig",
    "Faults",
    "IQOptionSimulator",
    "RunningSimulator",
    "SimConfig",
    "load_config",
    "login_url",
    "main",
    "running_simulator",
    "serve_forever",
]
