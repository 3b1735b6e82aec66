"""One log setup for every service, in one of two formats (``LOG_FORMAT``).

``text`` (the default) is for people: ``time level logger: message``; `copier up` prefixes
each line with the service's name. ``json`` is for log shippers: one object per line with
``time`` (ISO 8601 UTC, milliseconds), ``level``, ``service``, ``logger``, ``event`` (the
message), the ids of the work in hand (``signal_id``, ``order_id``, ``channel_id``,
``broker_account_id``) when the record carries them, any other ``extra=`` field, and
``exc`` (the formatted traceback) for an exception — so one filter on ``signal_id``
follows a signal through the API, router, worker and ledger.

The ids come from ``extra=`` or from :func:`set_log_ids`, a context variable set once at the
start of the task that works a signal (or a batch of its orders); a record's own ``extra=``
wins.

Neither format ever writes a secret: a field named like a credential (:data:`SECRET_KEYS`)
is written as ``[redacted]``, and so is, in the message and the traceback, a JWT-shaped
value or the value after such a name (``token=...``, ``"password": "..."``).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from contextvars import ContextVar
from typing import Any

LOG_FORMATS = ("text", "json")

# Field names whose values are never written, in any format, at any level.
SECRET_KEYS = frozenset(
    {
        "token",
        "password",
        "refresh_token",
        "access_token",
        "api_token",
        "secret",
        "authorization",
        "authorize",
        "credentials",
    }
)
REDACTED = "[redacted]"

# A JWT (three base64url parts, the first a JSON object: "eyJ") anywhere in a text.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)?")
# A secret's name followed by its value: token=abc, "password": "abc", 'token': 'abc',
# Authorization: Bearer abc. The value is everything up to a quote, space, comma or brace.
_NAMED_SECRET = re.compile(
    r"(?i)(?P<name>\b(?:" + "|".join(sorted(SECRET_KEYS, key=len, reverse=True)) + r")\b)"
    r"(?P<sep>[\"']?\s*[:=]\s*[\"']?(?>(?:Bearer\s+)?))"
    r"(?P<value>(?!\[redacted\])[^\s\"',}\]]+)"
)

# Attributes every LogRecord has; any other attribute came from extra=.
_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)

_ids: ContextVar[dict[str, str] | None] = ContextVar("log_ids", default=None)


def set_log_ids(**ids: str) -> None:
    """From now on, the current task's log records (and those of tasks it starts) carry
    ``ids``, added to any it already set: one context-variable set per signal or batch,
    nothing per log line. Call it at the start of a task that works one signal: asyncio
    gives each task its own copy of the context, so the ids end with the task."""
    current = _ids.get()
    _ids.set({**current, **ids} if current else ids)


def redact(text: str) -> str:
    """``text`` with every JWT-shaped value and every value named like a secret replaced."""
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    return _NAMED_SECRET.sub(lambda m: m["name"] + m["sep"] + REDACTED, text)


class TextFormatter(logging.Formatter):
    """The people's format, with secrets redacted from the message and traceback."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module docstring)."""

    def __init__(self, service: str, instance: str = "") -> None:
        super().__init__()
        self.service = service
        self.instance = instance

    def format(self, record: logging.LogRecord) -> str:
        created = time.gmtime(record.created)
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", created) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            **({"instance": self.instance} if self.instance else {}),
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        ids = _ids.get()
        if ids:
            entry.update(ids)
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS:
                entry[key] = REDACTED if key.lower() in SECRET_KEYS else _plain(value)
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def _plain(value: Any) -> Any:
    """A value as JSON can hold it, with secrets out of any text."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    return redact(str(value))


def setup_logging(level: str, format: str = "text", service: str = "", instance: str = "") -> None:
    """Log ``level`` and above to stdout in ``format`` (``text`` or ``json``), the json
    objects naming ``service`` (the process's name if none is given) and, when given, the
    ``instance`` of it (two workers or routers of one deployment tell apart by it)."""
    if format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT={format!r} is not one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(service or sys.argv[0], instance) if format == "json" else TextFormatter()
    )
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # Per-request access logs from uvicorn drown the signal path's own lines.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
