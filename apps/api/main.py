"""Run the API under uvicorn: ``python -m apps.api.main``.

NATS refusing the API's user, or not answering, ends the process before it serves, with
one line and exit status 1 (uvicorn would print the lifespan's traceback instead); so does
a REDIS_SENTINELS that monitors no REDIS_MASTER_NAME (exit status 2).
"""

from __future__ import annotations

import asyncio
import logging
import sys

import uvicorn

from apps.api.app import create_app
from apps.core import gc_pacing
from apps.core.logging import setup_logging
from apps.core.nats import NatsStartError, connect_from
from apps.core.redis import require_sentinels
from apps.core.settings import Settings


async def _nats_accepts(settings: Settings) -> None:
    nc = await connect_from(settings, "copier-api-start")
    await nc.close()


def main() -> None:
    settings = Settings.from_env()
    setup_logging(settings.log_level, settings.log_format, "api", settings.worker_id)
    if settings.redis_sentinels:
        require_sentinels(settings.redis_sentinels, settings.redis_master_name)
    try:
        asyncio.run(_nats_accepts(settings))
    except NatsStartError as exc:
        logging.getLogger("api").error("%s", exc)
        sys.exit(1)
    app = create_app(settings)
    gc_pacing.start()
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        # Signal intake must not wait behind a slow client; uvloop + httptools via [standard].
        loop="uvloop",
        http="httptools",
        ws_max_size=64 * 1024,
        # Frames here are small JSON (signals, acks, progress of a few hundred bytes):
        # permessage-deflate cost both ends CPU on every one and saved next to nothing.
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
