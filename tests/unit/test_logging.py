"""Both log formats: one JSON object per line with the work's ids, and no secret in either."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import pytest

from apps.core.logging import REDACTED, redact, set_log_ids, setup_logging

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_json_lines_carry_time_level_service_event_and_the_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("INFO", "json", "router", "host-router-2")

    async def work() -> None:
        set_log_ids(signal_id="sig1", channel_id="chan1")
        logging.getLogger("router").info("routed %d", 3, extra={"order_id": "o1"})

    asyncio.run(work())
    logging.getLogger("router").info("after the task")
    first, after = (json.loads(line) for line in lines(capsys))
    assert first["level"] == "INFO" and first["service"] == "router"
    assert first["instance"] == "host-router-2"  # which of the routers
    assert first["logger"] == "router" and first["event"] == "routed 3"
    assert (first["signal_id"], first["channel_id"], first["order_id"]) == ("sig1", "chan1", "o1")
    assert first["time"].endswith("Z") and len(first["time"]) == len("2026-01-01T00:00:00.000Z")
    assert "signal_id" not in after  # the ids ended with the task that set them


def test_json_exception_is_one_line_with_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "json", "ledger")
    try:
        raise RuntimeError(f"refused token={JWT}")
    except RuntimeError:
        logging.getLogger("ledger").exception("failed")
    (line,) = lines(capsys)
    entry = json.loads(line)
    assert "RuntimeError" in entry["exc"] and JWT not in line


@pytest.mark.parametrize("format", ["text", "json"])
def test_no_secret_in_either_format(format: str, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("DEBUG", format, "api")
    log = logging.getLogger("api")
    log.debug("> TEXT %s", '{"authorize": "a1-brokertoken", "req_id": 1}')
    log.debug("login %s", {"email": "a@b.c", "password": "hunter22"})
    log.debug("headers: Authorization: Bearer %s", JWT)
    log.debug("refresh_token=opaque-refresh-value access_token=%s", JWT)
    log.info("linked", extra={"token": "a1-brokertoken", "credentials": {"token": "x"}})
    out = "\n".join(lines(capsys))
    for secret in ("a1-brokertoken", "hunter22", JWT, "opaque-refresh-value"):
        assert secret not in out
    assert out.count(REDACTED) >= 5


def test_redact_leaves_plain_text_alone() -> None:
    text = "signal 01J8 split into 3 shards; credentials of acc1 cannot be opened"
    assert redact(text) == text


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        setup_logging("INFO", "xml")
