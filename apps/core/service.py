"""The lifecycle every long-running service shares: settings, logging, run until
SIGTERM/SIGINT, then let the service drain before the process exits. With
``METRICS_ENABLED`` the process serves its Prometheus metrics on ``METRICS_PORT``
(apps.core.metrics) from a thread of its own, from start to exit.

Stopping is bounded and quiet: once asked to stop, a service has
``SHUTDOWN_GRACE_SECONDS`` to finish its work in hand and is cancelled after that; an
error met while stopping (NATS or Valkey away, say) is one log line. Either way the
process exits 0, since whatever was left unfinished is redelivered to another instance.
An error before the stop ends the process with a traceback and exit code 1, so that
its supervisor restarts it — or, when NATS refuses what the service needs to start
(credentials, permissions, topology: apps.core.nats.NatsSetupError), with that one line.
A REDIS_SENTINELS that monitors no REDIS_MASTER_NAME ends it at start with one line and
exit status 2.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable

from apps.core import gc_pacing, metrics
from apps.core.logging import setup_logging
from apps.core.nats import NatsSetupError
from apps.core.redis import require_sentinels
from apps.core.settings import Settings

ServiceMain = Callable[[Settings, asyncio.Event], Awaitable[None]]

# Under `copier up`'s 10 s between SIGTERM and SIGKILL, so the service says how it ended.
SHUTDOWN_GRACE_SECONDS = 8.0
# How long cancelled work may take to unwind before the process leaves without it.
CANCEL_GRACE_SECONDS = 1.0


def run_service(name: str, main: ServiceMain, settings: Settings | None = None) -> None:
    """Run ``main(settings, stop)``; ``stop`` is set on SIGTERM/SIGINT and ``main`` is
    expected to finish its in-flight work and return."""
    settings = settings or Settings.from_env()
    setup_logging(settings.log_level, settings.log_format, name, settings.worker_id)
    log = logging.getLogger(name)
    if settings.redis_sentinels:
        require_sentinels(settings.redis_sentinels, settings.redis_master_name)
    gc_pacing.start()
    if settings.metrics_enabled:
        metrics.serve(settings.metrics_port)

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("starting")
        work = asyncio.ensure_future(main(settings, stop))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait((work, stopping), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        await asyncio.wait((work,), timeout=SHUTDOWN_GRACE_SECONDS)
        if not work.done():
            work.cancel()
            await asyncio.wait((work,), timeout=CANCEL_GRACE_SECONDS)
            log.warning(
                "stopped with work unfinished after %.0f s (it is redelivered)",
                SHUTDOWN_GRACE_SECONDS,
            )
            if not work.done():  # it ignores cancellation: asyncio.run would wait for ever
                logging.shutdown()
                os._exit(0)
            if not work.cancelled():
                work.exception()  # what it met while unwinding was said in the line above
            return
        error = work.exception()
        if error is None:
            log.info("stopped")
        elif stop.is_set():
            log.warning("stopped; while stopping: %s: %s", type(error).__name__, error)
        elif isinstance(error, NatsSetupError):
            log.error("%s", error)
            sys.exit(1)
        else:
            raise error

    asyncio.run(runner())
