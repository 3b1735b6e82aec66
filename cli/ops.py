"""`copier ops streams|trace|declare`: what JetStream holds, where a signal went, and
declaring the streams and consumers of `nats/`.

Connects as the settings' NATS user (NATS_USER/NATS_PASSWORD: `ops` reads, `admin`
declares). Reads the same streams, subjects and consumers that `nats/` declares, so
`nats stream info SIGNALS` / `nats consumer report EXECUTIONS` show the same numbers; the
JetStream API is called directly (as the `nats` CLI does) so nothing is lost in a
client library's translation (``last_ts``, ``last_active``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
import typer
from nats.aio.client import Client as NATS

from apps.core.messages import (
    FINAL_STATES,
    ExecutionBatch,
    ExecutionState,
    FanoutStarted,
    execution_event_decoder,
    signal_decoder,
)
from apps.core.nats import NatsSetupError, NatsStartError, connect_from, declare_topology
from apps.core.settings import Settings
from apps.core.topology import Topology
from cli.client import ApiClient
from cli.output import ApiOption, CliError, JsonOption, console, print_json, table, when

app = typer.Typer(
    help="Look inside the running system: streams, consumers, a signal's path.",
    no_args_is_help=True,
)

STREAMS = ("SIGNALS", "ORDERS", "EXECUTIONS")

NatsOption = Annotated[
    str | None, typer.Option("--nats", help="NATS URL (default: settings NATS_URL).")
]
NamespaceOption = Annotated[
    str | None,
    typer.Option(help="Stream/subject prefix (default: settings NAMESPACE; empty in production)."),
]


def ops_settings(nats_url: str | None, namespace: str | None) -> Settings:
    settings = Settings.from_env()
    if nats_url:
        settings = replace(settings, nats_url=nats_url)
    if namespace is not None:
        settings = replace(settings, namespace=namespace)
    return settings


# An ops command says NATS is away, refused or unreachable, within this; it never hangs.
CONNECT_SECONDS = 10.0


@contextlib.asynccontextmanager
async def nats_connection(settings: Settings) -> AsyncIterator[NATS]:
    """A connection as the settings' NATS user that never reconnects; refused credentials
    or no server within ``CONNECT_SECONDS`` is a one-line :class:`CliError`."""
    try:
        nc = await connect_from(
            settings,
            "copier-ops",
            start_timeout=CONNECT_SECONDS,
            connect_timeout=3,
            allow_reconnect=False,
            # One more try per server after a pause, then nats-py gives up by itself.
            max_reconnect_attempts=1,
        )
    except NatsStartError as exc:
        raise CliError(str(exc)) from None
    try:
        yield nc
    finally:
        await nc.close()


async def js_api(nc: NATS, subject: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    payload = json.dumps(body).encode() if body is not None else b""
    try:
        reply = await nc.request(f"$JS.API.{subject}", payload, timeout=5)
    except Exception as exc:
        raise CliError(f"JetStream did not answer {subject}: is JetStream enabled?") from exc
    data: dict[str, Any] = json.loads(reply.data)
    error = data.get("error")
    if error:
        raise CliError(f"{subject}: {error.get('description', error)}")
    return data


# --- streams -------------------------------------------------------------------------


async def stream_report(nc: NATS, topology: Topology) -> list[dict[str, Any]]:
    report: list[dict[str, Any]] = []
    for base in STREAMS:
        name = topology.stream(base)
        try:
            info = await js_api(nc, f"STREAM.INFO.{name}")
        except CliError as exc:
            report.append({"stream": name, "error": exc.message, "consumers": []})
            continue
        consumers: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = await js_api(nc, f"CONSUMER.LIST.{name}", {"offset": offset})
            consumers += page.get("consumers") or []
            offset += page.get("limit") or 0
            if not page.get("consumers") or offset >= page.get("total", 0):
                break
        state = info.get("state") or {}
        report.append(
            {
                "stream": name,
                "subjects": info.get("config", {}).get("subjects", []),
                "messages": state.get("messages"),
                "bytes": state.get("bytes"),
                "first_seq": state.get("first_seq"),
                "last_seq": state.get("last_seq"),
                "last_ts": state.get("last_ts"),
                "consumers": [
                    {
                        "name": c.get("name"),
                        "num_pending": c.get("num_pending"),
                        "num_ack_pending": c.get("num_ack_pending"),
                        "num_redelivered": c.get("num_redelivered"),
                        "num_waiting": c.get("num_waiting"),
                        "delivered_stream_seq": (c.get("delivered") or {}).get("stream_seq"),
                        "last_active": (c.get("delivered") or {}).get("last_active"),
                    }
                    for c in sorted(consumers, key=lambda c: str(c.get("name")))
                ],
            }
        )
    return report


def short_ts(value: str | None) -> str:
    """The server's RFC 3339 nanosecond stamps, cut to milliseconds."""
    if not value or value.startswith("0001-"):
        return "never"
    head, _, rest = value.partition(".")
    return f"{head.replace('T', ' ')}.{rest[:3]}Z" if rest else value


@app.command("streams")
def streams(
    nats_url: NatsOption = None,
    namespace: NamespaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Each stream and consumer: messages, pending, ack-pending, redelivered, last activity.

    The same names as `nats stream report` and `nats consumer report STREAM` show.

    Examples:
      copier ops streams
      NATS_URL=nats://nats:4222 copier ops streams --json
    """
    settings = ops_settings(nats_url, namespace)

    async def collect() -> list[dict[str, Any]]:
        async with nats_connection(settings) as nc:
            return await stream_report(nc, Topology(settings.namespace))

    report = asyncio.run(collect())
    if as_json:
        print_json(report)
        return
    out = console()
    out.print(
        table(
            "streams",
            ["stream", "subjects", "messages", "bytes", "last seq", "last message"],
            [
                [s["stream"], s.get("error", "")]
                if "error" in s
                else [
                    s["stream"],
                    " ".join(s["subjects"]),
                    s["messages"],
                    s["bytes"],
                    s["last_seq"],
                    short_ts(s["last_ts"]),
                ]
                for s in report
            ],
        )
    )
    out.print(
        table(
            "consumers",
            [
                "stream",
                "consumer",
                "pending",
                "ack pending",
                "redelivered",
                "waiting",
                "last active",
            ],
            [
                [
                    s["stream"],
                    c["name"],
                    c["num_pending"],
                    c["num_ack_pending"],
                    c["num_redelivered"],
                    c["num_waiting"],
                    short_ts(c["last_active"]),
                ]
                for s in report
                for c in s["consumers"]
            ],
        )
    )


# --- trace ---------------------------------------------------------------------------


# The stream holds no message on the subject at or after the sequence asked for.
_NO_MESSAGE = 10037


async def read_subject(
    nc: NATS, stream: str, subject: str, start: datetime | None, stop: Any = None
) -> list[tuple[datetime, bytes, dict[str, str]]]:
    """Messages on one subject, from ``start`` or the beginning, read one at a time with
    the stream's MSG.GET (``next_by_subj``): a read the `ops` user may make, which leaves
    nothing behind on the server; ``stop(data, headers)`` ends the scan early."""
    found: list[tuple[datetime, bytes, dict[str, str]]] = []
    seq = 1
    while True:
        try:
            reply = await nc.request(
                f"$JS.API.STREAM.MSG.GET.{stream}",
                json.dumps({"seq": seq, "next_by_subj": subject}).encode(),
                timeout=5,
            )
        except Exception as exc:
            raise CliError(f"JetStream did not answer a read of {stream}: {exc}") from exc
        body: dict[str, Any] = json.loads(reply.data)
        error = body.get("error")
        if error:
            if error.get("err_code") == _NO_MESSAGE:
                return found
            raise CliError(f"reading {stream}: {error.get('description', error)}")
        message = body["message"]
        seq = int(message["seq"]) + 1
        at = _stored_at(message["time"])
        if start is not None and at < start:
            continue
        data = base64.b64decode(message.get("data") or "")
        headers = _headers(base64.b64decode(message.get("hdrs") or ""))
        found.append((at, data, headers))
        if stop is not None and stop(data, headers):
            return found


def _stored_at(stamp: str) -> datetime:
    """The server's RFC 3339 stamp, nanoseconds cut to what ``datetime`` holds."""
    head, _, rest = stamp.rstrip("Z").partition(".")
    fraction = f".{rest[:6]}" if rest else ""
    return datetime.fromisoformat(f"{head}{fraction}+00:00")


def _headers(block: bytes) -> dict[str, str]:
    """``NATS/1.0\\r\\nName: value\\r\\n...`` → ``{name: value}``."""
    headers: dict[str, str] = {}
    for line in block.decode(errors="replace").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip()] = value.strip()
    return headers


def epoch(moment: datetime) -> float:
    return moment.timestamp()


async def trace_signal(nc: NATS, topology: Topology, signal: dict[str, Any]) -> dict[str, Any]:
    signal_id, channel_id = signal["signal_id"], signal["channel_id"]
    created = float(signal["created_at"])
    timeline: list[dict[str, Any]] = [
        {"step": "accepted by the API", "at": created, "detail": f"channel {channel_id}"}
    ]

    start = datetime.fromtimestamp(created, UTC) - timedelta(seconds=2)
    stored = await read_subject(
        nc,
        topology.stream("SIGNALS"),
        topology.signal_subject(channel_id),
        start,
        stop=lambda data, headers: headers.get("Nats-Msg-Id") == signal_id,
    )
    hit = [m for m in stored if m[2].get("Nats-Msg-Id") == signal_id]
    if hit:
        body = signal_decoder.decode(hit[0][1])
        timeline.append(
            {
                "step": "stored in SIGNALS",
                "at": epoch(hit[0][0]),
                "detail": f"{topology.signal_subject(channel_id)}; valid until "
                f"{when(body.valid_until)}",
            }
        )
    else:
        timeline.append({"step": "stored in SIGNALS", "at": None, "detail": "not found"})

    events = await read_subject(
        nc,
        topology.stream("EXECUTIONS"),
        topology.execution_subject(channel_id, signal_id),
        None,
    )
    fanouts: list[FanoutStarted] = []
    latest: dict[str, ExecutionState] = {}
    firsts: dict[str, float] = {}
    lasts: dict[str, float] = {}
    outcomes = {"won": 0, "lost": 0}
    for _, data, _headers in events:
        try:
            event = execution_event_decoder.decode(data)
        except msgspec.DecodeError:
            continue
        if isinstance(event, FanoutStarted):
            fanouts.append(event)
            continue
        assert isinstance(event, ExecutionBatch)
        for e in event.executions:
            state = e.state.value
            firsts[state] = min(firsts.get(state, e.at), e.at)
            lasts[state] = max(lasts.get(state, e.at), e.at)
            if e.state is ExecutionState.SETTLED:
                if e.outcome is not None:
                    outcomes[e.outcome.value] += 1
            elif e.state in FINAL_STATES and latest.get(e.order_id) is not ExecutionState.PLACED:
                # A redelivered order may report again; a placement is what stands.
                latest[e.order_id] = e.state

    if fanouts:
        shards = fanouts[0].shards
        total = sum({f.shard: f.total for f in fanouts}.values())
        timeline.append(
            {
                "step": "routed",
                "at": min(f.at for f in fanouts),
                "detail": f"{total} orders in {shards} shard(s)",
            }
        )
    else:
        timeline.append({"step": "routed", "at": None, "detail": "no fan-out yet"})
    counted = {s.value: 0 for s in FINAL_STATES}
    for state in latest.values():
        counted[state.value] += 1
    for label, key, pick in (
        ("first placement", "placed", firsts),
        ("last placement", "placed", lasts),
    ):
        timeline.append({"step": label, "at": pick.get(key), "detail": ""})
    others = {s: n for s, n in counted.items() if n and s != "placed"}
    last_final = max((lasts[s] for s in counted if s in lasts), default=None)
    timeline.append(
        {
            "step": "every order final" if signal.get("done") else "orders final so far",
            "at": last_final,
            "detail": f"{counted['placed']} placed"
            + "".join(f", {n} {s}" for s, n in sorted(others.items())),
        }
    )
    if "settled" in firsts:
        timeline.append({"step": "first settlement", "at": firsts["settled"], "detail": ""})
        timeline.append(
            {
                "step": "last settlement",
                "at": lasts["settled"],
                "detail": f"{outcomes['won']} won, {outcomes['lost']} lost",
            }
        )
    for row in timeline:
        row["after_ms"] = None if row["at"] is None else round((row["at"] - created) * 1000, 1)
    return {
        "signal": signal,
        "timeline": timeline,
        "executions": {"messages": len(events), "orders": counted, **outcomes},
    }


@app.command("trace")
def trace(
    signal_id: Annotated[str, typer.Argument(help="The signal id (printed by `signal send`).")],
    nats_url: NatsOption = None,
    namespace: NamespaceOption = None,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """A signal's path through the services, with timestamps.

    Accepted by the API, stored in SIGNALS, routed, first/last placement, final, settled.

    Needs a login that may see the signal (owner, delegate, admin) and access to NATS.

    Examples:
      copier ops trace 01JD3V...
      copier ops trace 01JD3V... --json | jq .timeline
    """
    settings = ops_settings(nats_url, namespace)
    with ApiClient(api) as client:
        signal = client.get(f"/api/v1/signals/{signal_id}")

    async def collect() -> dict[str, Any]:
        async with nats_connection(settings) as nc:
            return await trace_signal(nc, Topology(settings.namespace), signal)

    result = asyncio.run(collect())
    if as_json:
        print_json(result)
        return
    counts = signal.get("counts") or {}
    rows = [
        [
            r["step"],
            when(r["at"]),
            "" if r["after_ms"] is None else f"+{r['after_ms']:.1f}",
            r["detail"],
        ]
        for r in result["timeline"]
    ]
    out = console()
    out.print(
        table(
            f"signal {signal_id}: {signal['asset']} {signal['direction']} "
            f"{signal['expiry_seconds']}s stake {signal['stake']}",
            ["step", "at (UTC)", "ms", "detail"],
            rows,
        )
    )
    out.print(
        "ledger: "
        + ", ".join(
            f"{k} {counts.get(k)}"
            for k in ("total", "placed", "rejected", "expired", "failed", "unknown")
        )
        + f"; won {signal.get('won')}, lost {signal.get('lost')}, pnl {signal.get('pnl')}"
    )


# --- declare -------------------------------------------------------------------------


@app.command("declare")
def declare(
    nats_url: NatsOption = None,
    namespace: NamespaceOption = None,
    replicas: Annotated[
        int | None,
        typer.Option(help="Replicas of each stream (default: settings NATS_REPLICAS)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create or update the JetStream streams and consumers of `nats/` on the server.

    Connects as NATS_USER/NATS_PASSWORD — the `admin` user where the server has users
    (nats/auth.conf): the services' own users may not change the topology. Idempotent: a
    second run reports everything unchanged. A consumer that cannot be changed to match
    its file (the server refuses some changes) is an error that says what to do.

    Examples:
      NATS_USER=admin NATS_PASSWORD=... copier ops declare
      NATS_URL=nats://nats-1:4222,nats://nats-2:4222 NATS_REPLICAS=3 copier ops declare --json
    """
    settings = ops_settings(nats_url, namespace)
    if replicas is not None:
        settings = replace(settings, nats_replicas=replicas)
    try:
        done = asyncio.run(declare_topology(settings))
    except (NatsSetupError, ValueError) as exc:
        raise CliError(str(exc)) from None
    except Exception as exc:  # a JetStream API error answer, a timeout
        raise CliError(f"declaring the topology failed: {exc}") from None
    if as_json:
        print_json(done)
        return
    out = console()
    for action in ("created", "updated", "unchanged"):
        for name in done[action]:
            out.print(f"{action:<9} {name}")
    out.print(
        f"JetStream topology declared at {settings.nats_replicas} replica(s): "
        + ", ".join(f"{len(names)} {action}" for action, names in done.items())
    )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="ops")
