"""The lifecycle every long-running service shares: settings, logging, run until
SIGTERM/SIGINT, then let the service drain before the process exits."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from apps.core import gc_pacing
from apps.core.logging import setup_logging
from apps.core.settings import Settings

ServiceMain = Callable[[Settings, asyncio.Event], Awaitable[None]]


def run_service(name: str, main: ServiceMain, settings: Settings | None = None) -> None:
    """Run ``main(settings, stop)``; ``stop`` is set on SIGTERM/SIGINT and ``main`` is
    expected to finish its in-flight work and return."""
    settings = settings or Settings.from_env()
    setup_logging(settings.log_level)
    log = logging.getLogger(name)
    gc_pacing.start()

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("starting")
        await main(settings, stop)
        log.info("stopped")

    asyncio.run(runner())
