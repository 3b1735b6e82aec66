"""Accept-latency probes in a process of their own: ``python -m benchmarks.probe``.

While a fan-out runs, this process sends one signal over HTTP and one over the WebSocket
to a channel without subscribers, every ``--every`` seconds, and times each from the
first byte sent to the last byte of the answer. A WebSocket ping in each period (the API
answers it without Redis or JetStream) times the floor under the WebSocket's accept: the
two processes' wakeups, the loopback and the API's socket loop. It prints ``ready`` once
its WebSocket is open and authorised, and the samples as one JSON line when its stdin
closes.

Why a process of its own: a client that shares its event loop with the benchmark (polling
the simulator, the progress display, the runs' ledgers) times that work too, and at the
benchmark's priority it waits behind the fan-out for a CPU as the stack's own processes
do — a signal sender's machine does not run our fan-out. So this process runs at the
accept path's priority (``--nice``, the stack's ``ACCEPT_PATH_NICE``), keeps its garbage
collector off, and speaks plain HTTP/1.1 on one kept-alive connection (httpx spent ~2 ms
of client CPU per request here, more than the API's whole accept).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import websockets

from apps.core.embedded import run_at_nice


class HttpProbe:
    """One kept-alive HTTP/1.1 connection that POSTs the same signal again and again."""

    def __init__(self, api_url: str, path: str, token: str, body: dict[str, Any]) -> None:
        url = urlsplit(api_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        data = json.dumps(body).encode()
        self.request = (
            f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode() + data
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self) -> tuple[int, float]:
        """(status, milliseconds from the request's first byte to the answer's last); a
        connection the server closed meanwhile is opened again, untimed."""
        try:
            return await self._send()
        except (ConnectionError, asyncio.IncompleteReadError):
            self.reader = self.writer = None
            return await self._send()

    async def _send(self) -> tuple[int, float]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        t0 = time.perf_counter()
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in lines
            if line.lower().startswith(b"content-length:")
        )
        await self.reader.readexactly(length)
        elapsed = (time.perf_counter() - t0) * 1000
        if any(line.lower() == b"connection: close" for line in lines):
            self.writer.close()
            self.reader = self.writer = None
        return int(lines[0].split()[1]), elapsed


async def ws_authorised(ws_url: str, token: str) -> Any:
    """An open WebSocket to the API, authorised (its "ready" received)."""
    ws = await websockets.connect(ws_url)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    ready = json.loads(await ws.recv())
    if ready.get("type") != "ready":
        raise RuntimeError(f"WebSocket auth failed: {ready}")
    return ws


async def ws_send(ws: Any, message: dict[str, Any]) -> tuple[str, float]:
    """(the answer's type, milliseconds) for one signal over an open socket."""
    t0 = time.perf_counter()
    await ws.send(json.dumps(message))
    while True:
        answer = json.loads(await ws.recv())
        if answer.get("ref") == message["ref"]:
            return str(answer["type"]), (time.perf_counter() - t0) * 1000


async def probe(args: argparse.Namespace) -> dict[str, Any]:
    body = json.loads(args.signal)
    path = f"/api/v1/channels/{args.channel}/signals"
    http = HttpProbe(args.api, path, args.token, body)
    ws_url = args.api.replace("http", "ws", 1) + "/api/v1/ws"
    ws = await ws_authorised(ws_url, args.token)
    samples: dict[str, list[float]] = {
        f"{kind}_{field}": [] for kind in ("http", "ws", "ping") for field in ("ms", "at")
    }
    refused: list[str] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.read() else None)
    print("ready", flush=True)

    async def until(moment: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, moment - loop.time()))

    # HTTP and WebSocket probes take turns, half a period apart: each probes the server
    # as it is, not while it still answers the other one.
    ref, due = 0, loop.time()
    while not stop.is_set():
        at = time.time()
        status, ms = await http.send()
        if status == 202:
            samples["http_ms"].append(round(ms, 3))
            samples["http_at"].append(at)
        else:
            refused.append(f"http {status}")
        await until(due + args.every / 2)
        if stop.is_set():
            break
        ref += 1
        at = time.time()
        message = {"type": "signal", "channel_id": args.channel, "ref": str(ref), **body}
        kind, ms = await ws_send(ws, message)
        if kind == "accepted":
            samples["ws_ms"].append(round(ms, 3))
            samples["ws_at"].append(at)
        else:
            refused.append(f"ws {kind}")
        await until(due + args.every * 3 / 4)
        if stop.is_set():
            break
        ref += 1
        at = time.time()
        kind, ms = await ws_send(ws, {"type": "ping", "ref": str(ref)})
        if kind == "pong":
            samples["ping_ms"].append(round(ms, 3))
            samples["ping_at"].append(at)
        else:
            refused.append(f"ping {kind}")
        due += args.every
        await until(due)
    await ws.close()
    return {**samples, "refused": refused}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--signal", required=True, help="the signal's JSON body")
    parser.add_argument("--every", type=float, default=0.1)
    parser.add_argument("--nice", type=int, default=0)
    args = parser.parse_args()
    run_at_nice(args.nice)
    gc.disable()
    result = asyncio.run(probe(args))
    print(json.dumps(result), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
