"""Connecting to NATS and declaring the JetStream streams and consumers from `nats/`.

The JSON files under `nats/` are exactly what `nats stream add --config` and
`nats consumer add --config` accept, and exactly what this module sends to the server's
JetStream API — no translation through client-side dataclasses that could drop a field.
Start-up fails fast when the server ends up with a different configuration than the
files say (nats-py's `pull_subscribe` would otherwise silently keep an old durable).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.client import JetStreamContext

from apps.core.topology import Topology

log = logging.getLogger(__name__)

NATS_DIR = Path(__file__).resolve().parents[2] / "nats"

# Fields the server fills in or normalises itself; comparing them would report drift
# that is not drift.
_SERVER_FILLED = {
    "created",
    "sealed",
    "metadata",
    "consumer_limits",
    "compression",
    "first_seq",
    "allow_msg_ttl",
    "allow_msg_counter",
    "allow_atomic",
    "allow_msg_schedules",
    "mirror_direct",
    "allow_batched",
    "persist_mode",
    "name",
    "num_replicas",
    "inactive_threshold",
    "max_batch",
    "max_expires",
    "max_bytes",
    "priority_policy",
    "pause_until",
}


class TopologyDriftError(RuntimeError):
    """The server's stream/consumer configuration differs from the files in `nats/`."""


class JetStreamApiError(RuntimeError):
    def __init__(self, code: int, err_code: int, description: str) -> None:
        super().__init__(f"JetStream API error {code}/{err_code}: {description}")
        self.code = code
        self.err_code = err_code
        self.description = description


@dataclass(frozen=True, slots=True)
class StreamDefinition:
    name: str
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ConsumerDefinition:
    stream: str
    durable: str
    config: dict[str, Any]


def load_definitions(
    topology: Topology, nats_dir: Path = NATS_DIR
) -> tuple[list[StreamDefinition], list[ConsumerDefinition]]:
    """Read `nats/streams/*.json` and `nats/consumers/<STREAM>.<durable>.json`."""
    streams = []
    for path in sorted((nats_dir / "streams").glob("*.json")):
        config = json.loads(path.read_text())
        config["name"] = topology.stream(config["name"])
        config["subjects"] = [_subject(topology, s) for s in config["subjects"]]
        streams.append(StreamDefinition(config["name"], config))
    consumers = []
    for path in sorted((nats_dir / "consumers").glob("*.json")):
        stream_base = path.name.split(".", 1)[0]
        config = json.loads(path.read_text())
        if "filter_subject" in config:
            config["filter_subject"] = _subject(topology, config["filter_subject"])
        if "filter_subjects" in config:
            config["filter_subjects"] = [_subject(topology, s) for s in config["filter_subjects"]]
        consumers.append(
            ConsumerDefinition(topology.stream(stream_base), config["durable_name"], config)
        )
    return streams, consumers


def _subject(topology: Topology, subject: str) -> str:
    return topology.subject(subject) if topology.namespace else subject


async def connect(url: str, name: str, **options: Any) -> NATS:
    """A connection that reconnects forever, named for `nats server report connections`.

    Losing and finding the server are one log line each; nats-py's own error callback
    would log a traceback for every failed reconnect attempt.
    """
    nc = NATS()

    async def disconnected() -> None:
        if not nc.is_closed:  # nats-py calls this on close() too
            log.warning("disconnected from NATS; reconnecting")

    async def reconnected() -> None:
        log.info("reconnected to NATS")

    async def error(exc: Exception) -> None:
        # A lost connection or a refused reconnect attempt is what "reconnecting" says.
        lost = isinstance(exc, OSError | TimeoutError | nats.errors.UnexpectedEOF)
        level = logging.DEBUG if lost else logging.WARNING
        log.log(level, "NATS: %s", exc or type(exc).__name__)

    defaults: dict[str, Any] = {
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "connect_timeout": 5,
        "disconnected_cb": disconnected,
        "reconnected_cb": reconnected,
        "error_cb": error,
    }
    await nc.connect(url, name=name, **(defaults | options))
    return nc


async def close_nats(nc: NATS) -> None:
    """Drain a connection to the server, or just close one that is away: drain refuses a
    reconnecting connection, and nothing it holds could reach the server anyway."""
    if nc.is_connected:
        try:
            await nc.drain()
            return
        except nats.errors.Error:  # lost the server while draining
            pass
    await nc.close()


async def _api(nc: NATS, subject: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
    payload = json.dumps(body).encode() if body is not None else b""
    msg = await nc.request(f"$JS.API.{subject}", payload, timeout=5)
    reply = cast(dict[str, Any], json.loads(msg.data))
    error = reply.get("error")
    if error:
        raise JetStreamApiError(
            int(error.get("code", 0)), int(error.get("err_code", 0)), error.get("description", "")
        )
    return reply


async def ensure_topology(
    nc: NATS, topology: Topology, nats_dir: Path = NATS_DIR
) -> dict[str, list[str]]:
    """Create or update every stream and consumer from the files; fail on remaining drift.

    Idempotent: running it against a server that already matches changes nothing.
    Returns what was done, for the start-up log: ``{"created": [...], "updated": [...]}``.
    """
    streams, consumers = load_definitions(topology, nats_dir)
    done: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": []}
    for stream in streams:
        try:
            info = await _api(nc, f"STREAM.INFO.{stream.name}")
        except JetStreamApiError as exc:
            if exc.err_code != 10059:  # stream not found
                raise
            await _api(nc, f"STREAM.CREATE.{stream.name}", stream.config)
            done["created"].append(stream.name)
            continue
        if _differences(stream.config, info["config"]):
            info = await _api(nc, f"STREAM.UPDATE.{stream.name}", stream.config)
            _raise_on_drift(stream.name, stream.config, info["config"])
            done["updated"].append(stream.name)
        else:
            done["unchanged"].append(stream.name)
    for consumer in consumers:
        label = f"{consumer.stream}/{consumer.durable}"
        try:
            info = await _api(nc, f"CONSUMER.INFO.{consumer.stream}.{consumer.durable}")
        except JetStreamApiError as exc:
            if exc.err_code != 10014:  # consumer not found
                raise
            await _create_consumer(nc, consumer, action="create")
            done["created"].append(label)
            continue
        if _differences(consumer.config, info["config"]):
            info = await _create_consumer(nc, consumer, action="update")
            _raise_on_drift(label, consumer.config, info["config"])
            done["updated"].append(label)
        else:
            done["unchanged"].append(label)
    return done


async def _create_consumer(
    nc: NATS, consumer: ConsumerDefinition, *, action: str
) -> dict[str, Any]:
    body = {"stream_name": consumer.stream, "config": consumer.config, "action": action}
    try:
        return await _api(nc, f"CONSUMER.CREATE.{consumer.stream}.{consumer.durable}", body)
    except JetStreamApiError as exc:
        raise TopologyDriftError(
            f"consumer {consumer.stream}/{consumer.durable} cannot be {action}d to match "
            f"nats/: {exc.description}. Delete it (nats consumer rm {consumer.stream} "
            f"{consumer.durable}) once it is drained, then start again."
        ) from exc


def _differences(wanted: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: (value, actual.get(key))
        for key, value in wanted.items()
        if key not in _SERVER_FILLED and not _same(value, actual.get(key))
    }


def _same(wanted: Any, actual: Any) -> bool:
    if wanted == actual:
        return True
    # The server omits false/empty/zero values from its JSON.
    return not wanted and actual is None


def _raise_on_drift(label: str, wanted: Mapping[str, Any], actual: Mapping[str, Any]) -> None:
    diff = _differences(wanted, actual)
    if diff:
        details = ", ".join(f"{k}: want {w!r}, server has {a!r}" for k, (w, a) in diff.items())
        raise TopologyDriftError(f"{label} differs from nats/ after update: {details}")


async def server_config(nc: NATS, stream: str, durable: str | None = None) -> dict[str, Any]:
    """The configuration the server holds for a stream (or one of its consumers)."""
    if durable is None:
        return cast(dict[str, Any], (await _api(nc, f"STREAM.INFO.{stream}"))["config"])
    info = await _api(nc, f"CONSUMER.INFO.{stream}.{durable}")
    return cast(dict[str, Any], info["config"])


async def fetch_ready(
    sub: JetStreamContext.PullSubscription, batch: int, timeout: float, gather: float = 0.002
) -> list[Msg]:
    """Wait up to ``timeout`` for the first message, then take up to ``batch`` in all of
    what is there (waiting at most ``gather`` more).

    nats-py asks for the rest with ``no_wait`` first, so what is already stored comes at
    once; ``gather`` only bounds the wait when nothing else is there (a lone signal), and
    every ms of it is a ms added to that signal's first order.

    nats-py's ``fetch(batch)`` on an idle consumer sends a pull request for the whole
    batch and returns only when the batch is full or the request expires: one signal
    would wait out the timeout (up to 0.5 s) before a router saw it. Raises nats-py's
    timeout (or the builtin ``TimeoutError``) when nothing came.
    """
    first: list[Msg] = await sub.fetch(1, timeout=timeout)
    if batch <= 1:
        return first
    try:
        more: list[Msg] = await sub.fetch(batch - 1, timeout=gather)
    except (NatsTimeout, TimeoutError):
        return first
    return first + more
