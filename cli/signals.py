"""`copier signal send|stream|watch|list`: signals in, fan-out progress out, the history.

`send` uses plain HTTP unless asked to `--wait`; waiting and streaming use the API's
WebSocket (protocol in apps/api/signals/ws.py), so the live view sees progress from the
instant the signal is accepted and a script pays one connection for many signals.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from cli.client import AnswerLost, ApiClient, ApiRefused, unreachable
from cli.output import ApiOption, CliError, JsonOption, console, print_json, table, when

app = typer.Typer(
    help="Send signals and follow their fan-out.", no_args_is_help=True, rich_markup_mode=None
)

STATES = ("placed", "rejected", "expired", "failed", "unknown")
# The API allows 20 messages a second per socket with a burst of 40 (apps/api/signals/ws.py);
# pacing a little below that means a fast script never meets the limit at all.
SEND_RATE = 18.0
SEND_BURST = 30.0
# Access tokens live 15 minutes; a long-running stream re-authenticates well before.
REAUTH_EVERY = 600.0
# A signal whose answer was lost (a timeout, or the API's "outcome_unknown") is asked for
# again under the same client_id, after each of these pauses: the API then returns the
# first signal, never a second one.
RESEND_PAUSES = (1.0, 2.0)
ANSWER_TIMEOUT = 30.0


# --- the socket ----------------------------------------------------------------------


async def open_socket(client: ApiClient) -> tuple[ClientConnection, dict[str, Any]]:
    """Connect and authenticate; returns the socket and the server's ``ready`` message."""
    # An HTTP call first: refreshes an expired access token and proves the API is up.
    await asyncio.to_thread(client.get, "/api/v1/me")
    try:
        ws = await connect(client.ws_url, open_timeout=10, max_size=1 << 20)
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
        raise unreachable(client.api) from exc
    await ws.send(json.dumps({"type": "auth", "token": client.token}))
    ready = await receive(ws, 10)
    if ready.get("type") != "ready":
        await ws.close()
        raise CliError(describe(ready))
    return ws, ready


async def receive(ws: ClientConnection, timeout: float) -> dict[str, Any]:
    try:
        raw = await asyncio.wait_for(ws.recv(), timeout)
    except ConnectionClosed as exc:
        reason = exc.rcvd.reason if exc.rcvd else ""
        raise CliError(f"the API closed the connection{': ' + reason if reason else ''}") from exc
    message: dict[str, Any] = json.loads(raw)
    return message


def describe(message: dict[str, Any]) -> str:
    error = message.get("error") or {}
    if not isinstance(error, dict):
        return str(error)
    text = str(error.get("message") or message)
    return f"{text} ({error['code']})" if error.get("code") else text


# --- send ----------------------------------------------------------------------------


def answer_lost(exc: CliError) -> bool:
    """Whether a failed send may still have been queued (so only its client_id may
    send it again)."""
    return isinstance(exc, AnswerLost) or (
        isinstance(exc, ApiRefused) and exc.error_code == "outcome_unknown"
    )


def post_signal(client: ApiClient, channel: str, body: dict[str, Any]) -> Any:
    """POST one signal; a lost answer is asked for again under the same client_id."""
    for pause in (*RESEND_PAUSES, None):
        try:
            return client.post(f"/api/v1/channels/{channel}/signals", json=body)
        except CliError as exc:
            if not answer_lost(exc):
                raise
            if pause is None:
                raise CliError(
                    f"{exc.message} — the signal may have been queued; to find out without "
                    f"sending it twice, send it again with --client-id {body['client_id']}"
                ) from exc
            time.sleep(pause)
    raise AssertionError("unreachable")


def progress_view(signal_id: str, progress: dict[str, Any] | None, started: float) -> Group:
    counts = (progress or {}).get("counts") or {}
    total = counts.get("total")
    final = sum(int(counts.get(s) or 0) for s in STATES)
    bar = ProgressBar(total=float(total or max(final, 1)), completed=float(final), width=50)
    latency = ((progress or {}).get("latency_ms") or {}).get("last_placed")
    rows: list[tuple[str, Any]] = [(s, counts.get(s, 0)) for s in STATES]
    rows += [
        ("final / total", f"{final} / {total if total is not None else '?'}"),
        ("time to last placement", f"{latency} ms" if latency is not None else ""),
        ("won / lost", f"{(progress or {}).get('won', 0)} / {(progress or {}).get('lost', 0)}"),
        ("elapsed", f"{time.monotonic() - started:.1f} s"),
    ]
    parts: list[RenderableType] = [bar, table(f"signal {signal_id}", ["state", "orders"], rows)]
    return Group(*parts)


async def follow(
    client: ApiClient, ws: ClientConnection, signal_id: str, timeout: float, live: Live | None
) -> dict[str, Any]:
    """Progress pushes until every order is final; the HTTP read covers quiet moments
    (a push missed while connecting, or a fan-out that finished before we watched)."""
    started = time.monotonic()
    deadline = started + timeout
    latest: dict[str, Any] | None = None
    while not (latest and latest.get("done")):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CliError(f"gave up after {timeout:.0f} s: signal {signal_id} is not complete")
        try:
            message = await receive(ws, min(remaining, 1.0))
        except TimeoutError:
            latest = await asyncio.to_thread(client.get, f"/api/v1/signals/{signal_id}")
        else:
            if message.get("type") == "progress" and message.get("signal_id") == signal_id:
                latest = message
            elif message.get("type") == "error" and message.get("ref") is None:
                raise CliError(describe(message))
        if live is not None:
            live.update(progress_view(signal_id, latest, started))
    return latest


async def send_and_wait(
    client: ApiClient, channel: str, body: dict[str, Any], timeout: float, as_json: bool
) -> dict[str, Any]:
    ws, _ = await open_socket(client)
    try:
        pauses = iter(RESEND_PAUSES)
        signal = json.dumps({"type": "signal", "channel_id": channel, "ref": "cli", **body})
        await ws.send(signal)
        while True:
            answer = await receive(ws, 15)
            if answer.get("type") == "error":
                lost = (answer.get("error") or {}).get("code") == "outcome_unknown"
                pause = next(pauses, None) if lost else None
                if pause is None:
                    raise CliError(describe(answer))
                await asyncio.sleep(pause)  # the same client_id: never a second signal
                await ws.send(signal)
                continue
            if answer.get("type") == "accepted" and answer.get("ref") == "cli":
                break
        signal_id = answer["signal_id"]
        if as_json:
            final = await follow(client, ws, signal_id, timeout, None)
        else:
            console().print(signal_id)
            started = time.monotonic()
            with Live(
                progress_view(signal_id, None, started), console=console(), refresh_per_second=8
            ) as live:
                final = await follow(client, ws, signal_id, timeout, live)
        return {**answer, "progress": final}
    finally:
        await ws.close()


@app.command("send")
def send(
    channel: Annotated[str, typer.Option("--channel", "-c", help="Channel id.")],
    asset: Annotated[str, typer.Option(help="Asset, e.g. EURUSD or R_100.")],
    call: Annotated[
        bool | None,
        typer.Option(
            "--call/--put", help="Direction: --call (up) or --put (down).", show_default=False
        ),
    ] = None,
    expiry: Annotated[int, typer.Option(help="Expiry in seconds (15..86400).")] = 60,
    stake: Annotated[str, typer.Option(help="Stake in the account currency.")] = "10",
    tolerance: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=300,
            help="How far (seconds, 0..300) a broker's expiry may be from --expiry when the"
            " broker sells only whole minutes (IQ Option); default: the router's setting.",
            show_default=False,
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(
            help="Your own id: a repeat with the same id is not sent twice (default: a new id"
            " per call, under which a lost answer is asked for again)."
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the fan-out until every order is final.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="How long --wait waits, seconds.")] = 120.0,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send one signal to every subscriber of a channel; prints the signal id.

    With --wait: a live view of the fan-out; exit code 1 if any order failed or ended unknown.

    Examples:
      copier signal send -c CHANNEL --asset EURUSD --call --expiry 60 --stake 10
      copier signal send -c CHANNEL --asset R_100 --put --stake 2 --wait
      copier signal send -c CHANNEL --asset EURUSD --call --expiry 90 --tolerance 30
    """
    if call is None:
        raise typer.BadParameter("choose a direction: --call or --put", param_hint="--call/--put")
    body: dict[str, Any] = {
        "asset": asset,
        "direction": "CALL" if call else "PUT",
        "expiry_seconds": expiry,
        "stake": stake,
    }
    if tolerance is not None:
        body["expiry_tolerance_seconds"] = tolerance
    # Always one: a resend after a lost answer then gets the first signal, never a second.
    body["client_id"] = client_id or f"cli-{uuid.uuid4().hex}"
    with ApiClient(api) as client:
        if not wait:
            accepted = post_signal(client, channel, body)
            if as_json:
                print_json(accepted)
            else:
                console().print(accepted["signal_id"])
            return
        result = asyncio.run(send_and_wait(client, channel, body, timeout, as_json))
    if as_json:
        print_json(result)
    counts = result["progress"]["counts"]
    failed, unknown = int(counts.get("failed") or 0), int(counts.get("unknown") or 0)
    if failed or unknown:
        raise CliError(
            f"{failed} failed and {unknown} unknown of {counts.get('total')} orders "
            f"(signal {result['signal_id']})"
        )


# --- stream --------------------------------------------------------------------------


@dataclass
class Pacer:
    """A token bucket on the client side, matching the server's per-socket limit."""

    rate: float = SEND_RATE
    burst: float = SEND_BURST
    tokens: float = SEND_BURST
    stamp: float = field(default_factory=time.monotonic)

    async def wait(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


ALIASES = {
    "channel": "channel_id",
    "expiry": "expiry_seconds",
    "tolerance": "expiry_tolerance_seconds",
}


def signal_from_line(line: str, channel: str | None) -> dict[str, Any]:
    """One input line → the WebSocket's signal fields; ValueError names what is wrong."""
    try:
        # Floats stay text: a stake of 10.10 must not pass through binary floating point.
        raw = json.loads(line, parse_float=str)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError("each line must be a JSON object")
    signal: dict[str, Any] = {
        ALIASES.get(str(k), str(k)): v for k, v in raw.items() if k not in ("type", "ref")
    }
    signal.setdefault("channel_id", channel)
    if not signal["channel_id"]:
        raise ValueError("no channel: give --channel or a channel_id field")
    if isinstance(signal.get("direction"), str):
        signal["direction"] = signal["direction"].upper()
    stake = signal.get("stake")
    if isinstance(stake, int) and not isinstance(stake, bool):
        signal["stake"] = str(stake)
    return signal


def start_line_reader(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    """stdin lines into a queue from a daemon thread, so a blocked read never keeps the
    process alive after the socket is gone."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    stdin = sys.stdin

    def pump() -> None:
        try:
            for line in stdin:
                loop.call_soon_threadsafe(queue.put_nowait, line)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="stdin", daemon=True).start()
    return queue


class Outbox:
    """Results printed in input order as soon as each one (and all before it) is known."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.printed = 0
        self.errors = 0

    def expect(self, ref: str) -> None:
        self.order.append(ref)

    def settle(self, ref: str, result: dict[str, Any]) -> None:
        if ref in self.results:
            return
        self.results[ref] = {**result, "ref": ref, "line": int(ref)}
        self.errors += result.get("type") != "accepted"
        while self.printed < len(self.order) and self.order[self.printed] in self.results:
            print_json(self.results[self.order[self.printed]])
            self.printed += 1

    @property
    def pending(self) -> list[str]:
        return [ref for ref in self.order if ref not in self.results]


def local_error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"code": code, "message": message, "details": None}}


async def stream_signals(client: ApiClient, channel: str | None) -> Outbox:
    ws, _ = await open_socket(client)
    outbox = Outbox()
    all_answered = asyncio.Event()
    input_done = False
    session_error: list[str] = []
    in_flight: collections.deque[str] = collections.deque()

    def check_done() -> None:
        if input_done and not outbox.pending:
            all_answered.set()

    async def receiver() -> None:
        try:
            async for raw in ws:
                message = json.loads(raw)
                kind, ref = message.get("type"), message.get("ref")
                if kind not in ("accepted", "error"):
                    continue  # progress pushes, pongs
                code = (message.get("error") or {}).get("code")
                if kind == "error" and code == "session_ended":
                    session_error.append(describe(message))
                    continue
                # The server answers a socket's messages one by one, in order. Answers to
                # frames it could not decode (or had to drop: rate limit) carry no ref,
                # so they belong to the oldest signal still unanswered.
                if not (isinstance(ref, str) and ref in in_flight):
                    if not in_flight:
                        continue
                    ref = in_flight[0]
                in_flight.remove(ref)
                outbox.settle(ref, message)
                check_done()
        except ConnectionClosed:
            pass
        finally:
            all_answered.set()

    async def reauthenticate() -> None:
        while True:
            await asyncio.sleep(REAUTH_EVERY)
            if await asyncio.to_thread(client.refresh):
                await ws.send(json.dumps({"type": "auth", "token": client.token}))

    tasks = [asyncio.create_task(receiver()), asyncio.create_task(reauthenticate())]
    lines = start_line_reader(asyncio.get_running_loop())
    pacer = Pacer()
    number = 0
    try:
        while (line := await lines.get()) is not None:
            number += 1
            if not line.strip():
                continue
            ref = str(number)
            outbox.expect(ref)
            try:
                signal = signal_from_line(line, channel)
            except ValueError as exc:
                outbox.settle(ref, local_error("invalid_input", str(exc)))
                continue
            if tasks[0].done():
                outbox.settle(ref, local_error("not_sent", "the connection to the API closed"))
                continue
            await pacer.wait()
            in_flight.append(ref)
            try:
                await ws.send(json.dumps({**signal, "type": "signal", "ref": ref}))
            except ConnectionClosed:
                in_flight.remove(ref)
                outbox.settle(ref, local_error("not_sent", "the connection to the API closed"))
        input_done = True
        check_done()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_answered.wait(), ANSWER_TIMEOUT)
        reason = session_error[-1] if session_error else "no answer from the API"
        for ref in outbox.pending:
            outbox.settle(ref, local_error("no_answer", reason))
    finally:
        for task in tasks:
            task.cancel()
        await ws.close()
        await asyncio.gather(*tasks, return_exceptions=True)
    return outbox


@app.command("stream")
def stream(
    channel: Annotated[
        str | None, typer.Option("--channel", "-c", help="Channel for lines that name none.")
    ] = None,
    api: ApiOption = None,
    as_json: JsonOption = False,  # accepted for uniformity: this output is always JSON lines
) -> None:
    """Send signals read as JSON lines from stdin over one WebSocket.

    One JSON result per input line, in input order (ref = line number); exit 1 if any failed.

    Fields: asset, direction (CALL|PUT), expiry_seconds|expiry, stake, client_id, channel_id,
    expiry_tolerance_seconds|tolerance.

    Examples:
      echo '{"asset":"R_100","direction":"PUT","expiry":60,"stake":2}' | copier signal stream -c C
      my-algo | copier signal stream -c CHANNEL > results.jsonl
    """
    with ApiClient(api) as client:
        outbox = asyncio.run(stream_signals(client, channel))
    if outbox.errors:
        raise CliError(f"{outbox.errors} of {len(outbox.order)} signals were not accepted")


# --- watch ---------------------------------------------------------------------------


def watch_table(rows: dict[str, dict[str, Any]]) -> RenderableType:
    columns = ["signal", "channel", "total", *STATES, "won", "lost", "pnl", "last placed ms"]
    body = []
    for signal_id, p in rows.items():
        counts = p.get("counts") or {}
        body.append(
            [
                signal_id,
                p.get("channel_id"),
                counts.get("total"),
                *(counts.get(s) for s in STATES),
                p.get("won"),
                p.get("lost"),
                p.get("pnl"),
                (p.get("latency_ms") or {}).get("last_placed"),
            ]
        )
    return table("executions and outcomes", columns, body)


async def watch_channels(
    client: ApiClient,
    channel: str | None,
    max_events: int | None,
    timeout: float | None,
    as_json: bool,
) -> int:
    ws, ready = await open_socket(client)
    try:
        if channel:
            await ws.send(json.dumps({"type": "watch", "channel_id": channel}))
            while (answer := await receive(ws, 10)).get("type") not in ("watching", "error"):
                pass
            if answer["type"] == "error":
                raise CliError(f"channel {channel}: {describe(answer)}")
        elif not ready.get("channels"):
            raise CliError("you own or delegate no channels; name one with --channel")
        deadline = time.monotonic() + timeout if timeout else None
        rows: dict[str, dict[str, Any]] = {}
        events = 0
        with contextlib.ExitStack() as stack:
            live = None
            if not as_json:
                live = stack.enter_context(Live(watch_table(rows), console=console()))
            while max_events is None or events < max_events:
                wait = 3600.0 if deadline is None else deadline - time.monotonic()
                if wait <= 0:
                    break
                try:
                    message = await receive(ws, wait)
                except TimeoutError:
                    break
                if message.get("type") == "error" and message.get("ref") is None:
                    raise CliError(describe(message))
                if message.get("type") != "progress":
                    continue
                if channel and message.get("channel_id") != channel:
                    continue
                events += 1
                rows[message["signal_id"]] = message
                if live is not None:
                    live.update(watch_table(rows))
                else:
                    print_json(message)
        return events
    finally:
        await ws.close()


@app.command("watch")
def watch(
    channel: Annotated[
        str | None, typer.Option("--channel", "-c", help="Only this channel (default: all yours).")
    ] = None,
    max_events: Annotated[
        int | None, typer.Option(help="Stop after this many progress events.", min=1)
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Live table of your channels' signals: executions per state and outcomes.

    With --json, one JSON line per progress event.

    Examples:
      copier signal watch
      copier signal watch -c CHANNEL --json --max-events 100
    """
    with ApiClient(api) as client:
        asyncio.run(watch_channels(client, channel, max_events, timeout, as_json))


# --- list ----------------------------------------------------------------------------


def sender(signal: dict[str, Any]) -> str:
    """ "Paula (owner)", "Tom (delegate)": who sent it, as recorded when it was accepted."""
    sent_by = signal.get("sent_by")
    if not sent_by:
        return "—"
    return f"{sent_by.get('display_name') or sent_by.get('id')} ({sent_by.get('role')})"


def history_table(channel: str, signals: list[dict[str, Any]]) -> RenderableType:
    columns = ["signal", "sent", "sent by", "signal", "stake", "placed", "won", "lost", "pnl"]
    rows = [
        [
            s.get("signal_id"),
            when(s.get("created_at")),
            sender(s),
            f"{s.get('direction')} {s.get('asset')} {s.get('expiry_seconds')}s",
            s.get("stake"),
            f"{(s.get('counts') or {}).get('placed')}/{(s.get('counts') or {}).get('total')}",
            s.get("won"),
            s.get("lost"),
            s.get("pnl"),
        ]
        for s in signals
    ]
    return table(f"signals of {channel}", columns, rows)


@app.command("list")
def list_signals(
    channel: Annotated[str, typer.Option("--channel", "-c", help="The channel's id.")],
    limit: Annotated[
        int, typer.Option(help="At most this many, newest first.", min=1, max=200)
    ] = 50,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """A channel's signals, newest first: who sent each, its fan-out and outcomes.

    For the channel's owner and delegates.

    Examples:
      copier signal list -c CHANNEL
      copier signal list -c CHANNEL --limit 10 --json
    """
    with ApiClient(api) as client:
        signals = client.get(f"/api/v1/channels/{channel}/signals", params={"limit": limit})
    if as_json:
        print_json(signals)
    else:
        console().print(history_table(channel, signals))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="signal")
