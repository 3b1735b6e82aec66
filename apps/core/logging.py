"""One log format for every service: `copier up` prefixes lines with the service name."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stdout,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    # Per-request access logs from uvicorn drown the signal path's own lines.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
