"""What a run measures besides the simulator's ledger: CPU and peak memory per process,
accept latency from a probe process, when the stack is idle again, when the provider's
counts are complete and how long the ledger lags the last placement."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from apps.core.embedded import PROJECT_ROOT
from apps.core.redis import connect_redis_from
from apps.core.signal_stats import signal_counts_from
from apps.core.topology import Topology
from benchmarks.fanout.seeding import SIGNAL, Provider
from benchmarks.fanout.stack import Stack

# Accept-latency probes: one signal over HTTP and one over the WebSocket per period, half a
# period apart.
PROBE_EVERY_SECONDS = 0.1


@dataclass
class ProcessMeter:
    """CPU seconds between start and stop, and peak RSS (the kernel's high-water mark)."""

    pids: dict[str, int]
    cpu0: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def _cpu(pid: int) -> float:
        try:
            t = psutil.Process(pid).cpu_times()
            return float(t.user + t.system)
        except psutil.Error:
            return 0.0

    @staticmethod
    def _hwm_mib(pid: int) -> float:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def start(self) -> None:
        self.cpu0 = {name: self._cpu(pid) for name, pid in self.pids.items()}

    def stop(self, orders: int) -> tuple[dict[str, float], dict[str, float]]:
        per_k = {
            name: round((self._cpu(pid) - self.cpu0.get(name, 0.0)) / max(orders, 1) * 1000, 4)
            for name, pid in self.pids.items()
        }
        rss = {name: round(self._hwm_mib(pid), 1) for name, pid in self.pids.items()}
        return per_k, rss

    def busy(self, names: tuple[str, ...]) -> float:
        return sum(self._cpu(pid) for name, pid in self.pids.items() if name.startswith(names))


class Probes:
    """Signals to an empty channel over HTTP and the WebSocket while a fan-out runs, sent
    and timed by a process of their own (:mod:`benchmarks.probe`) at the accept path's
    priority: the client's side of the figure is a client's, not this process's."""

    def __init__(self, stack: Stack, who: Provider, channel_id: str, nice: int) -> None:
        self.argv = [
            sys.executable,
            "-m",
            "benchmarks.probe",
            "--api",
            stack.api_url,
            "--token",
            who.token,
            "--channel",
            channel_id,
            "--signal",
            json.dumps(SIGNAL),
            "--nice",
            str(nice),
            "--every",
            str(PROBE_EVERY_SECONDS),
        ]
        self.env = stack.env()
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=PROJECT_ROOT,
            env=self.env,
            start_new_session=True,  # its own scheduling group, as the stack's children
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 30)
        if line.strip() != b"ready":
            raise RuntimeError(f"the probe process did not start: {line!r}")

    async def finish(self) -> dict[str, Any]:
        """Stop the probes; their samples (``http_ms``, ``ws_ms``: milliseconds;
        ``http_at``, ``ws_at``: when each was sent, epoch seconds; ``refused``)."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.close()
        out, _ = await asyncio.wait_for(self.process.communicate(), 30)
        result: dict[str, Any] = json.loads(out.splitlines()[-1])
        return result


async def ledger_since(sim: httpx.AsyncClient, since: int) -> list[dict[str, Any]]:
    reply = await sim.get("/admin/ledger", params={"since": since}, timeout=300)
    reply.raise_for_status()
    return list(reply.json()["contracts"])


async def buys(sim: httpx.AsyncClient) -> int:
    return int((await sim.get("/admin/stats")).json()["buys"])


async def buys_of(sims: dict[str, httpx.AsyncClient]) -> dict[str, int]:
    """Contracts sold so far by each broker kind's simulator."""
    return {kind: await buys(sim) for kind, sim in sims.items()}


def bookings(kind: str, contracts: list[dict[str, Any]], signal_id: str) -> list[float]:
    """Epoch ms of each booking of ``signal_id`` in a simulator's ledger rows: Deriv's
    passthrough names the signal, IQ Option's request id is the order's (``<signal>.…``
    from the copier, ``<signal>-<n>`` from the baseline)."""
    if kind == "deriv":
        return [
            float(c["purchase_time_ms"])
            for c in contracts
            if (c.get("passthrough") or {}).get("signal_id") == signal_id
        ]
    return [
        float(c["created_ms"])
        for c in contracts
        if str(c.get("order_id", "")).startswith(signal_id)
    ]


BUSY = ("router", "ledger", "worker", "extra", "baseline", "sim", "mongodb", "valkey", "nats")


async def quiesce(meter: ProcessMeter, limit: float = 40.0) -> float | None:
    """Wait until the stack is idle (the last run's settlements and books done), so a
    run does not pay for its predecessor's tail; the seconds waited, ``None`` if the
    stack was still busy after ``limit``.

    The MongoDB stand-in is the slowest to finish (each order document is an upsert on
    SQLite), and it only gets CPU nothing else wants; a run started while it still
    writes would share the machine with it, so every run waits for it."""
    started = time.monotonic()
    last = meter.busy(BUSY)
    while time.monotonic() - started < limit:
        await asyncio.sleep(1.0)
        now = meter.busy(BUSY)
        if now - last < 0.05:
            return round(time.monotonic() - started, 1)
        last = now
    return None


class LedgerLag:
    """How long after the last placement the ledger has every execution in MongoDB.

    The `ledger` consumer acks a message only once MongoDB holds it, so the lag ends
    when its ack floor reaches the EXECUTIONS stream's last message as it was when the
    provider's counts were complete (after the workers' deferred bookkeeping; at 100k the
    first settlements, 15 s after their placements, are among them, later ones are not).
    The stream's end is read then, not at the last placement, because the deferred
    bookkeeping publishes most executions after it: an earlier end would understate the lag.
    """

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.topology = Topology(stack.settings.namespace)
        self.nc: Any = None

    async def __aenter__(self) -> LedgerLag:
        from apps.core.nats import connect_from

        reader = self.stack.reader
        self.nc = await connect_from(reader, "copier-bench")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.nc.close()

    async def last_seq(self) -> int:
        info = await self.nc.jetstream().stream_info(self.topology.stream("EXECUTIONS"))
        return int(info.state.last_seq)

    async def wait(self, target_seq: int, limit: float) -> float | None:
        """The moment (epoch s) the ledger acked ``target_seq``; ``None`` after ``limit``."""
        js = self.nc.jetstream()
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            info = await js.consumer_info(self.topology.stream("EXECUTIONS"), "ledger")
            if info.ack_floor.stream_seq >= target_seq:
                return time.time()
            await asyncio.sleep(0.25)
        return None


async def counted(stack: Stack, signal_id: str, t_accept: float, limit: float) -> float | None:
    """Milliseconds from the accept until the signal's counts in Redis (what the
    provider's dashboard shows) hold every order; ``None`` after ``limit`` seconds."""
    redis = connect_redis_from(stack.settings)
    key = Topology(stack.settings.namespace).signal_stats_key(signal_id)
    try:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if signal_counts_from(await redis.hgetall(key))["done"]:
                return round((time.time() - t_accept) * 1000, 1)
            await asyncio.sleep(0.05)
        return None
    finally:
        await redis.aclose()
