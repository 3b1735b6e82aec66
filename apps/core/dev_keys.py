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

log = logging.getLogger("keys")


def load_or_create(path: Path, create: Callable[[], bytes], what: str) -> bytes:
    """Return the file's bytes, creating it (mode 0600, never world-readable) if absent."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    data = create()
    # Written whole under a private name, then linked into place: link() fails if another
    # process (several services start at once) won the race, and then we read its key —
    # never a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return path.read_bytes()
    finally:
        tmp.unlink(missing_ok=True)
    log.warning("generated a development %s in %s — set it in settings for production", what, path)
    return data
