"""Development-only key material kept in ``data_dir`` when settings provide none.

Production passes keys through settings (environment/secret store). For a bare checkout
we generate a key once and keep it in a 0600 file, so restarts keep tokens and sealed
credentials valid; a warning says this is not a production setup.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("api.keys")


def load_or_create(path: Path, create: Callable[[], bytes], what: str) -> bytes:
    """Return the file's bytes, creating it (mode 0600, never world-readable) if absent."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    data = create()
    try:
        # O_EXCL: if another process won the race, read its key instead of overwriting it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    log.warning("generated a development %s in %s — set it in settings for production", what, path)
    return data
