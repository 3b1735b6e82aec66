"""Where the CLI keeps who you are: one credentials file in the user's config directory.

``$COPIER_CONFIG_DIR`` or ``$XDG_CONFIG_HOME/copier`` (default ``~/.config/copier``).
``credentials.json`` maps each API URL to its session, so one machine can be logged in
to a local stack and a production API at once; it is written 0600 because the refresh
token is as good as the password for 30 days.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEFAULT_API = "http://127.0.0.1:8000"


@dataclass
class Session:
    api: str
    email: str
    user_id: str
    access_token: str
    refresh_token: str


def config_dir() -> Path:
    explicit = os.environ.get("COPIER_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "copier"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def _read() -> dict[str, Any]:
    path = credentials_path()
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {"current": None, "sessions": {}}
    if not isinstance(data, dict) or not isinstance(data.get("sessions"), dict):
        return {"current": None, "sessions": {}}
    return data


def _write(data: dict[str, Any]) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    # Created 0600 from the start (not chmod-ed after writing), then renamed into place,
    # so the tokens are never readable by others, not even for an instant.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def normalize_api(url: str) -> str:
    return url.rstrip("/")


def resolve_api(explicit: str | None) -> str:
    """--api (or COPIER_API, which typer maps onto it) wins; else the last server logged in
    to; else the local stack."""
    if explicit:
        return normalize_api(explicit)
    current = _read().get("current")
    return normalize_api(current) if isinstance(current, str) and current else DEFAULT_API


def load_session(api: str) -> Session | None:
    raw = _read()["sessions"].get(normalize_api(api))
    if not isinstance(raw, dict):
        return None
    try:
        return Session(**raw)
    except TypeError:
        return None


def save_session(session: Session) -> None:
    data = _read()
    session.api = normalize_api(session.api)
    data["sessions"][session.api] = asdict(session)
    data["current"] = session.api
    _write(data)


def forget_session(api: str) -> bool:
    data = _read()
    removed = data["sessions"].pop(normalize_api(api), None) is not None
    if data.get("current") == normalize_api(api):
        data["current"] = next(iter(data["sessions"]), None)
    _write(data)
    return removed
