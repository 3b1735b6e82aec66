"""Fan-out benchmark: one signal to N subscriptions over M simulator accounts.

Starts the embedded stack (`copier up --detach` on free ports and a temporary DATA_DIR) or
uses a running one, seeds subscriptions in bulk through the API's projection functions,
sends signals through the public API (HTTP and WebSocket) and measures, from the
simulator's ledger (``purchase_time_ms``) and the client's clock (same machine):

- API accept latency of the signal, and of probe signals sent over HTTP and the
  WebSocket to a channel without subscribers while the fan-out runs;
- time from accept to the first and to the last order placed; per-order placement
  latency (accept → booked) p50/p95/p99; orders per second;
- CPU seconds per 1,000 orders and peak RSS (VmHWM) per service process.

The same accounts are then driven by the seed's design (:mod:`benchmarks.baseline_seed`)
and the table shows both and the ratio. Results go to benchmarks/results/<date>-fanout.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import httpx
import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from apps.api.models import BrokerAccount, Subscription
from apps.api.subscriptions.projection import write_broker_account, write_subscriptions
from apps.core.credentials import BrokerCredentials, cipher_from_settings
from apps.core.ids import new_id
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.signal_stats import signal_counts_from
from apps.core.topology import Topology
from benchmarks import baseline_seed
from benchmarks.probe import ws_authorised

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SIGNAL = {"asset": "R_100", "direction": "CALL", "expiry_seconds": 15, "stake": "1"}
PASSWORD = "bench-Password-1234"  # a throwaway user on a throwaway stack

# Wide enough for the results table when output goes to a file or CI log.
# No new booking for this long ends a run early (the rest expired, failed or was refused).
STALL_SECONDS = 8.0
# Signals stay valid this long on the benchmark's own stack, so a slow fan-out is measured
# to its last order instead of expiring the tail (settings default: 5 s).
BENCH_ENV = {"SIGNAL_VALIDITY_SECONDS": "120"}
# Accept-latency probes: one signal over HTTP and one over the WebSocket per period, half a
# period apart, during at least this long after a run's signal.
PROBE_EVERY_SECONDS = 0.1
MIN_PROBED_SECONDS = 0.25

console = Console(highlight=False, width=max(140, Console().width))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


# ---- the stack -----------------------------------------------------------------------


@dataclass
class Stack:
    settings: Settings
    api_url: str
    owned: bool
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)
    baseline: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def sim_http(self) -> str:
        return f"http://127.0.0.1:{self.settings.deriv_sim_port}"

    @property
    def ws_url(self) -> str:
        return self.api_url.replace("http", "ws", 1) + "/api/v1/ws"

    def pids(self) -> dict[str, int]:
        """Service name → pid, from the supervisor's state (what `copier status --json` shows)."""
        state = json.loads((self.settings.data_dir / "stack.json").read_text())
        pids = {s["name"]: s["pid"] for s in state["services"] if s["pid"]}
        for i, process in enumerate(self.extra):
            pids[f"extra-{i}-{cast(list[str], process.args)[2]}"] = process.pid
        for i, process in enumerate(self.baseline):
            pids[f"baseline-{i}"] = process.pid
        return pids

    def env(self) -> dict[str, str]:
        return {**os.environ, **self.settings.as_env(), "PYTHONPATH": str(ROOT)}

    def start_extra(self, module: str, name: str) -> None:
        log = (self.settings.data_dir / f"{name}.log").open("ab")
        self.extra.append(
            subprocess.Popen(
                [sys.executable, "-m", module],
                env={**self.env(), "WORKER_ID": name},
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        )

    def stop_extra(self) -> None:
        for process in self.extra:
            process.send_signal(signal.SIGTERM)
        for process in self.extra:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.extra.clear()

    def down(self, *, keep_data: bool = False) -> None:
        """Stop the stack. One this benchmark started leaves no data behind (its
        DATA_DIR holds 100 - 400 MB: Valkey's AOF, JetStream, the MongoDB stand-in) unless
        ``keep_data``; the services' logs are in it too, so a failed benchmark keeps it."""
        self.stop_extra()
        if self.owned:
            subprocess.run(
                [sys.executable, "-m", "cli.main", "down"],
                env=self.env(),
                cwd=ROOT,
                check=False,
                capture_output=True,
            )
            if keep_data:
                console.print(f"the stack's data and logs are kept in {self.settings.data_dir}")
            else:
                shutil.rmtree(self.settings.data_dir, ignore_errors=True)


def start_stack(overrides: dict[str, str]) -> Stack:
    data_dir = Path(tempfile.mkdtemp(prefix="copier-bench-"))
    env = {
        "DATA_DIR": str(data_dir),
        "NATS_PORT": str(_free_port()),
        "NATS_MONITOR_PORT": str(_free_port()),
        "REDIS_PORT": str(_free_port()),
        "MONGODB_PORT": str(_free_port()),
        "API_PORT": str(_free_port()),
        "DERIV_SIM_PORT": str(_free_port()),
        "LOG_LEVEL": "WARNING",
        **BENCH_ENV,
        **overrides,
    }
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "up", "--detach"],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"copier up failed (logs in {data_dir}):\n{result.stdout}\n{result.stderr}"
        )
    from cli.stack import embedded_settings

    settings = embedded_settings(Settings.from_env({**os.environ, **env}))
    return Stack(settings, f"http://127.0.0.1:{settings.api_port}", owned=True)


def running_stack(url: str) -> Stack:
    from cli.stack import embedded_settings

    return Stack(embedded_settings(Settings.from_env()), url.rstrip("/"), owned=False)


# ---- API and simulator clients --------------------------------------------------------


@dataclass
class Provider:
    token: str
    email: str = ""
    at: float = 0.0

    async def fresh(self, client: httpx.AsyncClient) -> None:
        """Log in again before the 15-minute access token runs out (long benchmarks);
        not more often: logins are rate-limited per account."""
        if time.monotonic() - self.at < 600:
            return
        body = {"email": self.email, "password": PASSWORD}
        login = await client.post("/api/v1/auth/login", json=body)
        login.raise_for_status()
        self.token, self.at = login.json()["access_token"], time.monotonic()


async def provider(client: httpx.AsyncClient) -> Provider:
    email = f"bench-{time.time_ns()}@example.test"
    body = {
        "email": email,
        "password": PASSWORD,
        "display_name": "Bench",
        "account_type": "provider",
    }
    (await client.post("/api/v1/auth/register", json=body)).raise_for_status()
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    login.raise_for_status()
    return Provider(login.json()["access_token"], email, time.monotonic())


async def new_channel(client: httpx.AsyncClient, who: Provider, name: str) -> str:
    body = {"name": name, "description": "benchmark", "plan": {"price": "10", "period_days": 30}}
    reply = await client.post("/api/v1/channels", json=body, headers=_auth(who))
    reply.raise_for_status()
    return str(reply.json()["id"])


def _auth(who: Provider) -> dict[str, str]:
    return {"Authorization": f"Bearer {who.token}"}


async def seed(
    stack: Stack, sim: httpx.AsyncClient, channel_id: str, count: int, accounts: int
) -> list[dict[str, Any]]:
    """``count`` subscriptions over ``accounts`` fresh simulator accounts, projected into
    Redis by the API's own functions; returns the baseline's view of the same subscribers."""
    made = await sim.post(
        "/admin/accounts/batch", json={"count": accounts, "currency": "USD", "balance": "1000000"}
    )
    made.raise_for_status()
    sim_accounts = made.json()["accounts"]
    settings = stack.settings
    cipher = cipher_from_settings(settings)
    redis = connect_redis(settings.redis_url)
    topology = Topology(settings.namespace)
    now = datetime.now(UTC)
    baseline: list[dict[str, Any]] = []
    for i, sim_account in enumerate(sim_accounts):
        account_id = new_id()
        sealed = cipher.seal(account_id, "deriv", BrokerCredentials(token=sim_account["token"]))
        account = BrokerAccount(
            id=account_id,
            owner_id=new_id(),
            kind="deriv",
            label="bench",
            currency="USD",
            loginid=sim_account["loginid"],
            ciphertext=sealed.ciphertext,
            nonce=sealed.nonce,
            key_id=sealed.key_id,
            created_at=now,
        )
        await write_broker_account(redis, topology, account)
        mine = count // accounts + (1 if i < count % accounts else 0)
        subs = [
            Subscription(
                channel_id=channel_id,
                subscriber_id=new_id(),
                broker_account_id=account.id,
                stake_mode="fixed",
                stake=Decimal(str(SIGNAL["stake"])),
                max_stake=Decimal("100"),
                created_at=now,
                expires_at=now + timedelta(days=30),
            )
            for _ in range(mine)
        ]
        await write_subscriptions(redis, topology, subs, account)
        baseline.extend(
            {
                "token": sim_account["token"],
                "stake": SIGNAL["stake"],
                "direction": SIGNAL["direction"],
                "symbol": SIGNAL["asset"],
                "duration": SIGNAL["expiry_seconds"],
            }
            for _ in range(mine)
        )
    await redis.aclose()
    return baseline


# ---- measuring -------------------------------------------------------------------------


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
            cwd=ROOT,
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


BUSY = ("router", "ledger", "worker", "extra", "baseline", "sim", "mongodb", "valkey", "nats")


async def quiesce(meter: ProcessMeter, limit: float = 40.0) -> float | None:
    """Wait until the stack is idle (the last run's settlements and books done), so a
    run does not pay for its predecessor's tail; the seconds waited, ``None`` if the
    stack was still busy after ``limit``.

    The MongoDB stand-in is the slowest to finish: it spends ~3 ms of CPU per upserted
    order document (mongoeco on SQLite), so a 10k run's placements and settlements keep
    it busy for a minute and more. It only gets CPU nothing else wants, but runs that
    started while it was still writing were measurably slower."""
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
    Until the ninth session the stream's end was taken 1 s after the last placement,
    before the deferred bookkeeping had published most executions: too small a lag.
    """

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.topology = Topology(stack.settings.namespace)
        self.nc: Any = None

    async def __aenter__(self) -> LedgerLag:
        from apps.core.nats import connect

        self.nc = await connect(self.stack.settings.nats_url, name="copier-bench")
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


@dataclass
class Scenario:
    system: str  # "copier" | "baseline"
    n: int
    accounts: int
    latency_ms: int
    label: str = ""


class SignalRefused(RuntimeError):
    """The API refused a run's signal (a 4xx/5xx, or the WebSocket's ``error``): the run
    measured nothing, and the benchmark goes on with the next one."""


async def one_run(
    *,
    scenario: Scenario,
    stack: Stack,
    client: httpx.AsyncClient,
    sim: httpx.AsyncClient,
    who: Provider,
    channel_id: str,
    probe_channel: str,
    baseline_subs: list[dict[str, Any]],
    redis_url: str,
    transport: str,
    progress: Progress,
    timeout: float,
    lag: LedgerLag | None = None,
) -> dict[str, Any]:
    meter = ProcessMeter(stack.pids())
    quiet_after_s = await quiesce(meter, limit=60 + scenario.n / 100)
    await who.fresh(client)
    start = await buys(sim)
    meter.start()
    probes = Probes(stack, who, probe_channel, stack.settings.accept_path_nice)
    await probes.start()
    # The main signal's accept is timed in this process, whose full collections (the
    # seeded subscriptions, the runs' ledgers) took 55-74 ms: none may land inside it.
    gc.collect()
    gc.disable()
    try:
        await asyncio.sleep(0.3)  # a few probes of the idle stack, for comparison

        # The main signal's own WebSocket is open and authorised before the clock starts, as a
        # dashboard's is: its accept latency is the signal's, not the connection's.
        main_ws = await ws_authorised(stack.ws_url, who.token) if transport == "ws" else None
        t_send = time.time()
        if scenario.system == "baseline":
            signal_id = new_id()
            redis = connect_redis(redis_url)
            # A run that timed out leaves its tail queued; it must not count for this one.
            await redis.delete(baseline_seed.QUEUE)
            await baseline_seed.push_signal(redis, signal_id, baseline_subs)
            await redis.aclose()
        elif main_ws is not None:
            ws = main_ws
            await ws.send(
                json.dumps({"type": "signal", "channel_id": channel_id, "ref": "main", **SIGNAL})
            )
            while True:
                message = json.loads(await ws.recv())
                if message.get("ref") == "main":
                    break
            await ws.close()
            if message["type"] != "accepted":
                raise SignalRefused(f"signal refused over the WebSocket: {message}")
            signal_id = message["signal_id"]
        else:
            reply = await client.post(
                f"/api/v1/channels/{channel_id}/signals", json=SIGNAL, headers=_auth(who)
            )
            if reply.is_error:
                raise SignalRefused(f"signal refused: HTTP {reply.status_code} {reply.text[:300]}")
            signal_id = reply.json()["signal_id"]
        t_accept = time.time()

        task = progress.add_task(
            f"{scenario.system} N={scenario.n:,} {scenario.latency_ms} ms ({transport})",
            total=scenario.n,
        )
        deadline = time.monotonic() + timeout
        done, last_change, seen = 0, time.monotonic(), -1
        while done < scenario.n and time.monotonic() < deadline:
            done = await buys(sim) - start
            if done != seen:
                seen, last_change = done, time.monotonic()
            elif time.monotonic() - last_change > STALL_SECONDS:
                break  # orders expired or failed: nothing more will be placed
            progress.update(task, completed=min(done, scenario.n))
            await asyncio.sleep(0.05)
        cpu_per_k, rss = meter.stop(scenario.n)
        # The fan-out goes on after its last placement: the orders' bookkeeping (final
        # markers, executions, the ledger's counts) follows the burst. The probes go on
        # until the provider's live counts are complete.
        counted_ms = (
            await counted(stack, signal_id, t_accept, 30 + scenario.n / 1000)
            if scenario.system == "copier"
            else None
        )
        # A small fan-out is over within a probe period: probe it for one at least.
        await asyncio.sleep(max(0.0, t_send + MIN_PROBED_SECONDS - time.time()))
    finally:
        gc.enable()
        samples = await probes.finish()
    books_done: float | None = None
    if scenario.system == "copier" and lag is not None:
        # The worker reports a group's executions once the whole group is placed.
        await asyncio.sleep(1.0)
        books_done = await lag.wait(await lag.last_seq(), 60 + scenario.n / 500)
    # A service that restarted mid-run makes its figures (and maybe the run) meaningless.
    restarted = sorted(name for name, pid in stack.pids().items() if meter.pids.get(name) != pid)
    progress.remove_task(task)

    contracts = [
        c
        for c in await ledger_since(sim, start)
        if (c.get("passthrough") or {}).get("signal_id") == signal_id
    ]
    accept_ms = t_accept * 1000
    booked = sorted(float(c["purchase_time_ms"]) - accept_ms for c in contracts)
    placed = len(contracts)
    last = booked[-1] if booked else float("nan")
    ledger_lag_ms = (
        round(books_done * 1000 - (accept_ms + last), 1) if books_done and booked else None
    )
    return {
        "system": scenario.system,
        "transport": transport,
        "signal_id": signal_id,
        "placed": placed,
        "expected": scenario.n,
        "restarted": restarted,
        # How long the stack took to go idle before this run; None: it never did.
        "quiet_after_s": quiet_after_s,
        "accept_ms": round((t_accept - t_send) * 1000, 2),
        "first_placed_ms": round(booked[0], 1) if booked else None,
        "last_placed_ms": round(last, 1) if booked else None,
        "placement_ms": {
            "p50": round(pct(booked, 50), 1),
            "p95": round(pct(booked, 95), 1),
            "p99": round(pct(booked, 99), 1),
        },
        "orders_per_s": round(placed / (last / 1000), 1) if booked and last > 0 else None,
        "cpu_s_per_1000_orders": cpu_per_k,
        # Last booking → the ledger acked the last execution (MongoDB holds every order).
        "ledger_lag_ms": ledger_lag_ms,
        "peak_rss_mib": rss,
        # Accept → the provider's live counts hold every order.
        "counted_ms": counted_ms,
        "sent_at": t_send,  # epoch s, to find the run in the services' logs
        "probe_accept_ms": probe_figures(samples, t_send),
    }


async def counted(stack: Stack, signal_id: str, t_accept: float, limit: float) -> float | None:
    """Milliseconds from the accept until the signal's counts in Redis (what the
    provider's dashboard shows) hold every order; ``None`` after ``limit`` seconds."""
    redis = connect_redis(stack.settings.redis_url)
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


def probe_figures(samples: dict[str, Any], t_send: float) -> dict[str, Any]:
    """The probes sent while the fan-out ran (from the signal's send until its counts
    were complete), and the median of those sent before it, on the idle stack."""
    figures: dict[str, Any] = {"refused": samples.get("refused", [])}
    for kind in ("http", "ws", "ping"):
        pairs = list(zip(samples[f"{kind}_at"], samples[f"{kind}_ms"], strict=True))
        during = [(at, ms) for at, ms in pairs if at >= t_send]
        idle = [ms for at, ms in pairs if at < t_send]
        figures |= {
            f"{kind}_p50": round(pct([ms for _, ms in during], 50), 2),
            f"{kind}_p99": round(pct([ms for _, ms in during], 99), 2),
            f"{kind}_n": len(during),
            f"{kind}_idle_p50": round(pct(idle, 50), 2),
            # Every sample, for a p99 over all runs (one run has only a few dozen), and
            # when it was sent, in ms after the signal.
            f"{kind}_ms": [ms for _, ms in during],
            f"{kind}_sent_ms": [round((at - t_send) * 1000, 1) for at, _ in during],
        }
    return figures


def pooled(runs: list[dict[str, Any]], samples: str) -> float | None:
    values = [v for r in runs for v in r["probe_accept_ms"].get(samples, ())]
    return round(pct(values, 99), 2) if values else None


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(get: Any) -> float | None:
        values = [v for v in (get(r) for r in runs) if v is not None]
        return round(statistics.median(values), 2) if values else None

    return {
        "placed": med(lambda r: r["placed"]),
        "accept_ms": med(lambda r: r["accept_ms"]),
        "first_placed_ms": med(lambda r: r["first_placed_ms"]),
        "last_placed_ms": med(lambda r: r["last_placed_ms"]),
        "p50_ms": med(lambda r: r["placement_ms"]["p50"]),
        "p95_ms": med(lambda r: r["placement_ms"]["p95"]),
        "p99_ms": med(lambda r: r["placement_ms"]["p99"]),
        "orders_per_s": med(lambda r: r["orders_per_s"]),
        # The targets' figure: the p99 of every probe of every run (one run's p99 is
        # only its slowest probe or two). The median of the runs' own p99 beside it.
        "probe_http_p99_ms": pooled(runs, "http_ms"),
        "probe_ws_p99_ms": pooled(runs, "ws_ms"),
        # A WebSocket ping, the same socket's round trip without the accept's work.
        "probe_ping_p99_ms": pooled(runs, "ping_ms"),
        "probe_n": sum(len(r["probe_accept_ms"].get("http_ms", ())) for r in runs),
        "probe_http_p99_run_median_ms": med(lambda r: r["probe_accept_ms"]["http_p99"]),
        "probe_ws_p99_run_median_ms": med(lambda r: r["probe_accept_ms"]["ws_p99"]),
        "counted_ms": med(lambda r: r.get("counted_ms")),
        "ledger_lag_ms": med(lambda r: r.get("ledger_lag_ms")),
    }


# ---- the whole benchmark ---------------------------------------------------------------


@dataclass
class Options:
    sizes: list[int]
    latencies: list[int]
    runs: int
    accounts_ratio: int = 20
    accounts: int | None = None
    baseline: bool = True
    baseline_procs: int = 2
    baseline_tasks: int = 16
    scale_out: bool = True
    scale_out_n: int = 10_000
    scale_out_runs: int = 1
    out: Path | None = None
    use_running: str | None = None
    runs_for: dict[int, int] = field(default_factory=dict)  # size → runs override
    settings_env: dict[str, str] = field(default_factory=dict)
    vary: tuple[str, list[str]] | None = None  # one setting, run once per value
    keep_data: bool = False  # leave the started stack's DATA_DIR (and logs) behind


def run_timeout(n: int, latency: int) -> float:
    # Generous: ~50 orders/s at 50 ms, 100 orders/s at 0 ms, before a run is cut short.
    return 60 + n / 100 + n * latency / 2500


def start_baseline(stack: Stack, opts: Options) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(opts.baseline_procs):
        log = (stack.settings.data_dir / f"baseline-{i}.log").open("ab")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.baseline_seed",
                    "--redis",
                    stack.settings.redis_url,
                    "--deriv",
                    stack.settings.deriv_endpoint,
                    "--tasks",
                    str(opts.baseline_tasks),
                ],
                cwd=ROOT,
                env=stack.env(),
                stdout=log,
                stderr=log,
            )
        )
    return procs


async def bench(opts: Options) -> dict[str, Any]:
    stack = running_stack(opts.use_running) if opts.use_running else start_stack(opts.settings_env)
    baseline_procs: list[subprocess.Popen[bytes]] = []
    scenarios: list[dict[str, Any]] = []
    failed = True
    try:
        async with (
            httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client,
            httpx.AsyncClient(base_url=stack.sim_http, timeout=60) as sim,
            LedgerLag(stack) as lag,
        ):
            # Deriv's per-account rate limits would throttle the benchmark, not the copier.
            huge = [[10_000_000, 60.0]]
            await sim.put("/admin/limits", json={"general": huge, "outcome": huge, "pricing": huge})
            who = await provider(client)
            probe_channel = await new_channel(client, who, "bench-probe")
            if opts.baseline:
                baseline_procs = start_baseline(stack, opts)
                stack.baseline = baseline_procs
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress:
                plan: list[tuple[int, int, str]] = [
                    (n, lat, "") for n in opts.sizes for lat in opts.latencies
                ]
                if opts.scale_out and opts.scale_out_n:
                    plan += [(opts.scale_out_n, 0, "scale-out")]
                for n, latency, label in plan:
                    accounts = opts.accounts or max(1, n // opts.accounts_ratio)
                    await sim.put("/admin/faults", json={"latency_ms": latency})
                    channel_id = await new_channel(client, who, f"bench-{n}-{latency}")
                    progress.console.print(
                        f"seeding {n:,} subscriptions over {accounts:,} accounts"
                    )
                    subs = await seed(stack, sim, channel_id, n, accounts)
                    runs = opts.runs_for.get(n, opts.runs)
                    if label == "scale-out":
                        scenarios += await scale_out(
                            stack,
                            client,
                            sim,
                            who,
                            channel_id,
                            probe_channel,
                            n,
                            accounts,
                            opts.scale_out_runs,
                            progress,
                            lag,
                        )
                        continue
                    for system in ("copier", "baseline") if opts.baseline else ("copier",):
                        scenario = Scenario(system, n, accounts, latency)
                        results = []
                        refused: list[dict[str, Any]] = []
                        for i in range(runs if system == "copier" else max(1, min(runs, 3))):
                            transport = "http" if i % 2 == 0 else "ws"
                            try:
                                result = await one_run(
                                    scenario=scenario,
                                    stack=stack,
                                    client=client,
                                    sim=sim,
                                    who=who,
                                    channel_id=channel_id,
                                    probe_channel=probe_channel,
                                    baseline_subs=subs,
                                    redis_url=stack.settings.redis_url,
                                    transport=transport,
                                    progress=progress,
                                    timeout=run_timeout(n, latency),
                                    lag=lag,
                                )
                            except SignalRefused as exc:
                                # What a provider would have seen: reported, not retried.
                                refused.append(
                                    {"run": i, "transport": transport, "error": str(exc)}
                                )
                                progress.console.print(f"[red]run {i}: {exc}[/]")
                                continue
                            results.append(result)
                            progress.console.print(_one_line(scenario, result))
                        if not results:
                            raise RuntimeError(f"every run's signal was refused: {refused}")
                        scenarios.append(
                            {
                                "system": system,
                                "n": n,
                                "accounts": accounts,
                                "broker_latency_ms": latency,
                                "runs": results,
                                "refused": refused,
                                "median": median_of(results),
                            }
                        )
                        _checkpoint(opts, scenarios)
            await sim.put("/admin/faults", json={"latency_ms": 0})
        failed = False
    finally:
        for process in baseline_procs:
            process.send_signal(signal.SIGTERM)
        for process in baseline_procs:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        stack.down(keep_data=failed or opts.keep_data)
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "order_group_size": stack.settings.order_group_size,
            "worker_concurrency": stack.settings.worker_concurrency,
            "router_concurrency": stack.settings.router_concurrency,
            "router_shard_size": stack.settings.router_shard_size,
            "signal_validity_seconds": stack.settings.signal_validity_seconds,
            "baseline_processes": opts.baseline_procs,
            "baseline_tasks_per_process": opts.baseline_tasks,
        },
        "scenarios": scenarios,
        "comparison": comparison(scenarios),
    }
    report["targets"] = targets(report["comparison"])
    return report


# The targets at broker latency 0 ms (medians): (N, what, limit, better).
TARGETS: list[tuple[int, str, float, str]] = [
    (10_000, "last_placed_ms", 1_000.0, "below"),
    (100_000, "last_placed_ms", 10_000.0, "below"),
    (10_000, "throughput_ratio", 3.0, "above"),
    (10_000, "probe_http_p99_ms", 10.0, "below"),
    (10_000, "probe_ws_p99_ms", 5.0, "below"),
]


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target the run could measure, with its median and whether it holds."""
    verdicts = []
    for n, what, limit, better in TARGETS:
        row = next((r for r in rows if r["n"] == n and r["broker_latency_ms"] == 0), None)
        if row is None:
            continue
        value = row.get(what) if what == "throughput_ratio" else row["copier"].get(what)
        met = None if value is None else (value <= limit if better == "below" else value >= limit)
        verdicts.append({"n": n, "figure": what, "median": value, "limit": limit, "met": met})
    return verdicts


async def scale_out(
    stack: Stack,
    client: httpx.AsyncClient,
    sim: httpx.AsyncClient,
    who: Provider,
    channel_id: str,
    probe_channel: str,
    n: int,
    accounts: int,
    runs: int,
    progress: Progress,
    lag: LedgerLag,
) -> list[dict[str, Any]]:
    """The same fan-out with 1 and 2 routers x 1 and 2 Deriv workers (extras beside the
    stack's own router and worker)."""
    out = []
    for routers in (1, 2):
        for workers in (1, 2):
            stack.stop_extra()
            for i in range(routers - 1):
                stack.start_extra("apps.router.main", f"bench-router-{i}")
            for i in range(workers - 1):
                stack.start_extra("apps.brokers.deriv.worker", f"bench-worker-{i}")
            await asyncio.sleep(3 if routers + workers > 2 else 0)
            scenario = Scenario("copier", n, accounts, 0, f"{routers}r{workers}w")
            results = []
            for _ in range(runs):
                result = await one_run(
                    scenario=scenario,
                    stack=stack,
                    client=client,
                    sim=sim,
                    who=who,
                    channel_id=channel_id,
                    probe_channel=probe_channel,
                    baseline_subs=[],
                    redis_url=stack.settings.redis_url,
                    transport="http",
                    progress=progress,
                    timeout=run_timeout(n, 0),
                    lag=lag,
                )
                results.append(result)
                progress.console.print(_one_line(scenario, result))
            median = median_of(results)
            ops = median["orders_per_s"] or 0.0
            out.append(
                {
                    "system": "copier",
                    "scale_out": {"routers": routers, "workers": workers},
                    "n": n,
                    "accounts": accounts,
                    "broker_latency_ms": 0,
                    "runs": results,
                    "median": median,
                    "orders_per_s_per_worker": round(ops / workers, 1),
                }
            )
    stack.stop_extra()
    return out


def _checkpoint(opts: Options, scenarios: list[dict[str, Any]]) -> None:
    """Scenarios so far, beside the final file: a long benchmark cut short keeps them."""
    path = (opts.out or RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-fanout.json").with_suffix(
        ".partial.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"partial": True, "scenarios": scenarios}, indent=2) + "\n")


def comparison(scenarios: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    plain = [s for s in scenarios if "scale_out" not in s]
    for ours in (s for s in plain if s["system"] == "copier"):
        theirs = next(
            (
                s
                for s in plain
                if s["system"] == "baseline"
                and s["n"] == ours["n"]
                and s["broker_latency_ms"] == ours["broker_latency_ms"]
            ),
            None,
        )
        row: dict[str, Any] = {
            "n": ours["n"],
            "broker_latency_ms": ours["broker_latency_ms"],
            "copier": ours["median"],
            "baseline": theirs["median"] if theirs else None,
        }
        if theirs and ours["median"]["orders_per_s"] and theirs["median"]["orders_per_s"]:
            row["throughput_ratio"] = round(
                ours["median"]["orders_per_s"] / theirs["median"]["orders_per_s"], 2
            )
        if theirs and ours["median"]["last_placed_ms"] and theirs["median"]["last_placed_ms"]:
            row["last_placed_ratio"] = round(
                theirs["median"]["last_placed_ms"] / ours["median"]["last_placed_ms"], 2
            )
        rows.append(row)
    return rows


def _one_line(scenario: Scenario, r: dict[str, Any]) -> str:
    label = f" {scenario.label}" if scenario.label else ""
    return (
        f"{scenario.system}{label} N={scenario.n:,} lat={scenario.latency_ms} ms "
        f"[{r['transport']}]: placed {r['placed']:,}/{r['expected']:,}, accept "
        f"{r['accept_ms']} ms, last {r['last_placed_ms']} ms, {r['orders_per_s']} orders/s, "
        f"probe p99 http {r['probe_accept_ms']['http_p99']} / "
        f"ws {r['probe_accept_ms']['ws_p99']} / ping {r['probe_accept_ms']['ping_p99']} ms"
    )


def print_table(report: dict[str, Any]) -> None:
    table = Table(title="Fan-out benchmark (medians)", title_justify="left")
    for column in (
        "N",
        "brk ms",
        "accept",
        "first",
        "last",
        "p50/95/99",
        "ord/s",
        "base last",
        "base ord/s",
        "ratio",
        "probe p99 http/ws/ping",
        "ledger lag",
    ):
        table.add_column(column, justify="right")
    for row in report["comparison"]:
        ours, theirs = row["copier"], row["baseline"] or {}
        table.add_row(
            f"{row['n']:,}",
            str(row["broker_latency_ms"]),
            str(ours["accept_ms"]),
            str(ours["first_placed_ms"]),
            str(ours["last_placed_ms"]),
            f"{ours['p50_ms']}/{ours['p95_ms']}/{ours['p99_ms']}",
            str(ours["orders_per_s"]),
            str(theirs.get("last_placed_ms", "-")),
            str(theirs.get("orders_per_s", "-")),
            f"{row.get('throughput_ratio', '-')}x",
            f"{ours['probe_http_p99_ms']}/{ours['probe_ws_p99_ms']}/{ours['probe_ping_p99_ms']}",
            str(ours.get("ledger_lag_ms")),
        )
    console.print(table)
    for scenario in report["scenarios"]:
        for refused in scenario.get("refused", ()):
            console.print(
                f"[red]{scenario['system']} N={scenario['n']:,} run {refused['run']} "
                f"({refused['transport']}) left out: {refused['error']}[/]"
            )
    if report.get("targets"):
        t = Table(title="Targets (broker 0 ms, medians)", title_justify="left")
        for column in ("N", "figure", "median", "limit", "met"):
            t.add_column(column, justify="right")
        for v in report["targets"]:
            met = {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}[v["met"]]
            t.add_row(f"{v['n']:,}", v["figure"], str(v["median"]), str(v["limit"]), met)
        console.print(t)
    scale = [s for s in report["scenarios"] if "scale_out" in s]
    if scale:
        t = Table(title="Scale-out (N=10,000, 0 ms)", title_justify="left")
        for column in ("routers", "workers", "last ms", "orders/s", "orders/s per worker"):
            t.add_column(column, justify="right")
        for s in scale:
            t.add_row(
                str(s["scale_out"]["routers"]),
                str(s["scale_out"]["workers"]),
                str(s["median"]["last_placed_ms"]),
                str(s["median"]["orders_per_s"]),
                str(s["orders_per_s_per_worker"]),
            )
        console.print(t)
    services: dict[str, list[float]] = {}
    for s in report["scenarios"]:
        if s["system"] == "copier" and "scale_out" not in s:
            for r in s["runs"]:
                for name, value in r["cpu_s_per_1000_orders"].items():
                    services.setdefault(name, []).append(value)
    if services:
        t = Table(title="CPU s per 1,000 orders / peak RSS MiB (copier runs)", title_justify="left")
        t.add_column("service")
        t.add_column("CPU s / 1k (median)", justify="right")
        t.add_column("peak RSS MiB", justify="right")
        peaks = {
            name: max(
                r["peak_rss_mib"].get(name, 0) for s in report["scenarios"] for r in s["runs"]
            )
            for name in services
        }
        for name, values in sorted(services.items()):
            t.add_row(name, f"{statistics.median(values):.3f}", f"{peaks[name]:.0f}")
        console.print(t)


def write(report: dict[str, Any], out: Path | None) -> Path:
    path = out or RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-fanout.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    path.with_suffix(".partial.json").unlink(missing_ok=True)
    return path


def run(opts: Options) -> tuple[dict[str, Any], Path]:
    if opts.vary:
        report = vary(opts)
    else:
        report = asyncio.run(bench(opts))
        print_table(report)
    path = write(report, opts.out)
    console.print(f"results written to {path}")
    return report, path


def vary(opts: Options) -> dict[str, Any]:
    """The same scenarios once per value of one setting, each on a fresh stack (e.g.
    ``ORDER_GROUP_SIZE=1,50,200``: the unit of work on ORDERS)."""
    assert opts.vary is not None
    key, values = opts.vary
    variants = []
    for value in values:
        console.print(f"[bold]{key}={value}[/]")
        one = replace(opts, vary=None, settings_env={**opts.settings_env, key: value})
        report = asyncio.run(bench(one))
        print_table(report)
        variants.append({"setting": {key: value}, **report})
    table = Table(title=f"{key}: medians per value", title_justify="left")
    for column in ("value", "N", "last ms", "orders/s", "p50 ms", "CPU s / 1k (all services)"):
        table.add_column(column, justify="right")
    for variant in variants:
        for scenario in variant["scenarios"]:
            if scenario["system"] != "copier" or "scale_out" in scenario:
                continue
            cpu = statistics.median(
                sum(r["cpu_s_per_1000_orders"].values()) for r in scenario["runs"]
            )
            table.add_row(
                variant["setting"][key],
                f"{scenario['n']:,}",
                str(scenario["median"]["last_placed_ms"]),
                str(scenario["median"]["orders_per_s"]),
                str(scenario["median"]["p50_ms"]),
                f"{cpu:.3f}",
            )
    console.print(table)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "vary": key,
        "variants": variants,
    }


if __name__ == "__main__":
    import typer

    from cli.bench import bench as cli_bench

    typer.run(cli_bench)
