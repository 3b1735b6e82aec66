"""Connecting to NATS and declaring the JetStream streams and consumers from `nats/`.

The JSON files under `nats/` are exactly what `nats stream add --config` and
`nats consumer add --config` accept, and exactly what this module sends to the server's
JetStream API — no translation through client-side dataclasses that could drop a field.
Start-up fails fast when the server ends up with a different configuration than the
files say (nats-py's `pull_subscribe` would otherwise silently keep an old durable).

A stream's replica count is the deployment's (``NATS_REPLICAS``), not the file's: the
stream files carry none and :func:`ensure_topology` sets ``num_replicas`` from its
argument; the consumer files say 0, "as many as the stream", which the server keeps
reporting as 0 while it runs the consumer on the stream's peers (and moves it along when
the stream's count changes).

Connecting either succeeds or ends in one line (:class:`NatsStartError`): refused
credentials at once, an unreachable server after ``start_timeout``; once connected, a
connection reconnects for ever. A JetStream API call the user's permissions refuse fails
at once with :class:`NatsPermissionError` naming the user and what it may not do (the
server answers a refused publish with an error on the connection, not to the request).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.client import JetStreamContext
from nats.protocol.parser import AUTHORIZATION_VIOLATION, PERMISSIONS_ERR

from apps.core.outage import DEPENDENCY_ERRORS
from apps.core.settings import Settings
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
    "inactive_threshold",
    "max_batch",
    "max_expires",
    "max_bytes",
    "priority_policy",
    "pause_until",
}


# How long a service keeps trying to reach NATS before it gives up starting: long enough
# for a server that is restarting, short enough that a wrong NATS_URL is said, not hidden.
START_TIMEOUT = 20.0
# How long a JetStream API call may wait for an answer; a cluster electing its leaders
# ("temporarily unavailable") is asked again within this.
API_TIMEOUT = 5.0
API_UNAVAILABLE_PATIENCE = 30.0
_UNAVAILABLE = 10008  # JetStream is electing its meta leader (a cluster that just started)


class NatsSetupError(RuntimeError):
    """NATS refuses this process something it needs to start; the message is one line
    that says what to do (the service exits non-zero with it, no traceback)."""


class NatsStartError(NatsSetupError):
    """No connection: credentials refused, or no server reached in time."""


class JetStreamUnavailableError(NatsSetupError):
    """JetStream did not answer within ``API_UNAVAILABLE_PATIENCE``: on a cluster, no meta
    leader (a node that cannot reach its routes stays alone, and a lone node of three
    elects none)."""


class NatsPermissionError(NatsSetupError):
    """The connection's user may not make a JetStream API call it needs."""


class TopologyDriftError(NatsSetupError):
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
    topology: Topology, nats_dir: Path = NATS_DIR, *, replicas: int = 1
) -> tuple[list[StreamDefinition], list[ConsumerDefinition]]:
    """Read `nats/streams/*.json` (each stream at ``replicas``) and
    `nats/consumers/<STREAM>.<durable>.json`."""
    if replicas < 1:
        raise ValueError(f"NATS_REPLICAS must be 1 or more, not {replicas}")
    streams = []
    for path in sorted((nats_dir / "streams").glob("*.json")):
        config = json.loads(path.read_text())
        config["num_replicas"] = replicas
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


def server_urls(url: str) -> list[str]:
    """``NATS_URL`` may list several servers, comma-separated (one per cluster node)."""
    return [part.strip() for part in url.split(",") if part.strip()]


def inbox_prefix(user: str) -> str:
    """Where a user's replies arrive: nats/auth.conf lets each user subscribe to its own."""
    return f"_INBOX.{user}" if user else "_INBOX"


async def connect(
    url: str,
    name: str,
    *,
    user: str = "",
    password: str = "",
    start_timeout: float = START_TIMEOUT,
    **options: Any,
) -> NATS:
    """A connection that reconnects forever once made, named for
    `nats server report connections`.

    Raises :class:`NatsStartError` (one line) when the server refuses the credentials or
    none of ``url``'s servers answers within ``start_timeout``. Losing and finding the
    server are one log line each; nats-py's own error callback would log a traceback for
    every failed reconnect attempt.
    """
    nc = NATS()
    started = False
    refused: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()
    last_error: list[Exception] = []

    async def disconnected() -> None:
        if not nc.is_closed:  # nats-py calls this on close() too
            log.warning("disconnected from NATS; reconnecting")

    async def reconnected() -> None:
        log.info("reconnected to NATS")

    async def error(exc: Exception) -> None:
        text = str(exc).lower()
        if PERMISSIONS_ERR in text:
            if not _fail_waiting_request(nc, str(exc)):
                log.warning("NATS user %r: %s", user, exc)
            return
        if not started:  # said once, by the caller, if the start fails
            last_error[:] = [exc]
            if AUTHORIZATION_VIOLATION in text and not refused.done():
                refused.set_result(exc)
            return
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
        "inbox_prefix": inbox_prefix(user),
    }
    if user:
        defaults |= {"user": user, "password": password}
    servers = server_urls(url)
    connecting = asyncio.ensure_future(nc.connect(servers, name=name, **(defaults | options)))
    await asyncio.wait((connecting, refused), timeout=start_timeout, return_when="FIRST_COMPLETED")
    if connecting.done() and connecting.exception() is None:
        started = True
        return nc
    gave_up = connecting.done()  # nats-py ran out of attempts (``max_reconnect_attempts``)
    reason = last_error[0] if last_error else (connecting.exception() if gave_up else None)
    connecting.cancel()
    await asyncio.gather(connecting, return_exceptions=True)
    await nc.close()
    who = f"user {user!r}" if user else "an anonymous connection"
    if refused.done():
        raise NatsStartError(
            f"NATS refused {who}: authorization violation — check NATS_USER/NATS_PASSWORD"
        )
    detail = f": {reason}" if reason else ""
    within = "" if gave_up else f" within {start_timeout:.0f} s"
    raise NatsStartError(
        f"cannot reach NATS at {', '.join(servers)}{within}{detail} — "
        f"is it running? (check NATS_URL)"
    )


async def connect_from(settings: Settings, name: str, **options: Any) -> NATS:
    """:func:`connect` to NATS_URL as the settings' NATS user (NATS_USER/NATS_PASSWORD)."""
    return await connect(
        settings.nats_url,
        name,
        user=settings.nats_user,
        password=settings.nats_password,
        **options,
    )


# Requests waiting for a JetStream API answer, per connection and subject: a refused
# publish is reported on the connection (error_cb), never to the request's inbox.
_waiting: weakref.WeakKeyDictionary[NATS, dict[str, list[asyncio.Future[str]]]] = (
    weakref.WeakKeyDictionary()
)
_DENIED_SUBJECT = re.compile(r'for publish to "([^"]+)"', re.IGNORECASE)


def _fail_waiting_request(nc: NATS, message: str) -> bool:
    """Fail the requests waiting on the subject of a refused publish; False: none was."""
    found = _DENIED_SUBJECT.search(message)
    if found is None:
        return False
    futures = _waiting.get(nc, {}).get(found.group(1).lower(), [])
    for future in futures:
        if not future.done():
            future.set_result(message)
    return bool(futures)


def _user(nc: NATS) -> str:
    return str(nc.options.get("user") or "") or "(anonymous)"


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
    """One JetStream API call; asked again while a new cluster elects its meta leader
    (the server answers "temporarily unavailable", or not at all).

    Raises :class:`NatsPermissionError` at once when the user may not publish to the
    API subject, :class:`JetStreamApiError` for the server's error answers."""
    payload = json.dumps(body).encode() if body is not None else b""
    full = f"$JS.API.{subject}"
    deadline = asyncio.get_running_loop().time() + API_UNAVAILABLE_PATIENCE
    wait = 1.0  # a cluster without a meta leader yet is asked again soon
    while True:
        try:
            reply = await _request(nc, full, payload, timeout=wait)
        except NatsTimeout:
            wait = min(wait * 2, API_TIMEOUT)
            # Repeating is safe: reads, and creates/updates to the same configuration.
            if asyncio.get_running_loop().time() > deadline:
                raise _unavailable(subject, "no answer") from None
            continue
        error = reply.get("error")
        if not error:
            return reply
        exc = JetStreamApiError(
            int(error.get("code", 0)), int(error.get("err_code", 0)), error.get("description", "")
        )
        if exc.err_code != _UNAVAILABLE:
            raise exc
        if asyncio.get_running_loop().time() > deadline:
            raise _unavailable(subject, exc.description) from exc
        await asyncio.sleep(0.25)


def _unavailable(subject: str, seen: str) -> JetStreamUnavailableError:
    return JetStreamUnavailableError(
        f"JetStream did not serve {subject} within {API_UNAVAILABLE_PATIENCE:.0f} s ({seen}): "
        f"is the NATS cluster formed? A node that cannot reach its routes has no meta "
        f"leader (check NATS_URL and each node's --routes)"
    )


async def _request(nc: NATS, subject: str, payload: bytes, timeout: float) -> dict[str, Any]:
    denied: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    waiting = _waiting.setdefault(nc, {}).setdefault(subject.lower(), [])
    waiting.append(denied)
    request = asyncio.ensure_future(nc.request(subject, payload, timeout=timeout))
    try:
        await asyncio.wait((request, denied), return_when="FIRST_COMPLETED")
    finally:
        waiting.remove(denied)
        if not waiting:
            _waiting.get(nc, {}).pop(subject.lower(), None)
    if not request.done():
        request.cancel()
        await asyncio.gather(request, return_exceptions=True)
        raise NatsPermissionError(f"NATS user {_user(nc)!r} may not {_action(subject)}")
    return cast(dict[str, Any], json.loads(request.result().data))


def _action(subject: str) -> str:
    """``$JS.API.STREAM.CREATE.ORDERS`` → ``create stream ORDERS (<the subject>)``."""
    parts = subject.split(".")
    if len(parts) >= 5 and parts[2] in ("STREAM", "CONSUMER"):
        kind, verb, target = parts[2].lower(), parts[3].lower(), "/".join(parts[4:6])
        verb = {"info": "read", "msg": "read messages of"}.get(verb, verb)
        return f"{verb} {kind} {target} ({subject})"
    return f"publish to {subject}"


async def ensure_topology(
    nc: NATS, topology: Topology, nats_dir: Path = NATS_DIR, *, replicas: int = 1
) -> dict[str, list[str]]:
    """Create or update every stream (at ``replicas``) and consumer from the files; fail on
    remaining drift.

    Idempotent: running it against a server that already matches changes nothing, and
    only reads (STREAM.INFO, CONSUMER.INFO) — so a service whose NATS user may not change
    the topology starts against one that `copier ops declare` declared, and fails with a
    :class:`NatsPermissionError` that says so when something is missing or differs.
    Returns what was done, for the start-up log:
    ``{"created": [...], "updated": [...], "unchanged": [...]}``.
    """
    streams, consumers = load_definitions(topology, nats_dir, replicas=replicas)
    done: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": []}
    for stream in streams:
        try:
            info = await _api(nc, f"STREAM.INFO.{stream.name}")
        except JetStreamApiError as exc:
            if exc.err_code != 10059:  # stream not found
                raise
            await _change(nc, f"STREAM.CREATE.{stream.name}", stream.config)
            done["created"].append(stream.name)
            continue
        if _differences(stream.config, info["config"]):
            info = await _change(nc, f"STREAM.UPDATE.{stream.name}", stream.config)
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


async def declare_topology(
    settings: Settings, name: str = "copier-declare"
) -> dict[str, list[str]]:
    """:func:`ensure_topology` as ``settings``' NATS user (the admin user where the server
    has users), at ``settings.nats_replicas``, on a connection of its own.

    `copier ops declare` and `copier up` declare through this."""
    nc = await connect_from(settings, name)
    try:
        return await ensure_topology(
            nc, Topology(settings.namespace), replicas=settings.nats_replicas
        )
    finally:
        await nc.close()


async def _create_consumer(
    nc: NATS, consumer: ConsumerDefinition, *, action: str
) -> dict[str, Any]:
    body = {"stream_name": consumer.stream, "config": consumer.config, "action": action}
    try:
        return await _change(nc, f"CONSUMER.CREATE.{consumer.stream}.{consumer.durable}", body)
    except JetStreamApiError as exc:
        raise TopologyDriftError(
            f"consumer {consumer.stream}/{consumer.durable} cannot be {action}d to match "
            f"nats/: {exc.description}. Delete it (nats consumer rm {consumer.stream} "
            f"{consumer.durable}) once it is drained, then start again."
        ) from exc


async def _change(nc: NATS, subject: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A call that changes the topology: a user that may not make it is told who may."""
    try:
        return await _api(nc, subject, body)
    except NatsPermissionError as exc:
        raise NatsPermissionError(
            f"{exc}: declare the topology with `copier ops declare` (NATS user admin)"
        ) from None


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


async def fetched(fetch: Callable[[], Awaitable[list[Msg]]], pause: float) -> list[Msg]:
    """What ``fetch`` took: nothing when it found nothing in its time, and nothing after
    ``pause`` when NATS could not serve it — reconnecting, or a consumer between two
    leaders, for which a cluster answers 503 during the seconds an election takes. A
    consumer loop rides either out instead of exiting."""
    try:
        return await fetch()
    except (NatsTimeout, TimeoutError):
        return []
    except DEPENDENCY_ERRORS as exc:
        log.debug("fetching: %r", exc)
        await asyncio.sleep(pause)
        return []
