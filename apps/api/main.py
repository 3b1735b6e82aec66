"""Run the API under uvicorn: ``python -m apps.api.main``."""

from __future__ import annotations

import uvicorn

from apps.api.app import create_app
from apps.core import gc_pacing
from apps.core.logging import setup_logging
from apps.core.settings import Settings


def main() -> None:
    settings = Settings.from_env()
    setup_logging(settings.log_level, settings.log_format, "api")
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
