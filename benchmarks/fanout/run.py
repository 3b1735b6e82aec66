"""The benchmark's runs: each scenario (N subscribers, a broker latency, the copier or the
seed's design) on its channel, the runs of each in turn with the stack idle in between, the
scale-out grid, and one fresh stack per value of a varied setting."""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from apps.api.models import BrokerKind
from apps.core.embedded import PROJECT_ROOT
from apps.core.ids import new_id
from apps.core.redis import connect_redis
from benchmarks import baseline_seed
from benchmarks.fanout.meters import (
    LedgerLag,
    Probes,
    ProcessMeter,
    bookings,
    buys_of,
    counted,
    ledger_since,
    quiesce,
)
from benchmarks.fanout.report import (
    checkpoint,
    comparison,
    console,
    machine,
    median_of,
    pct,
    print_table,
    print_variants,
    probe_figures,
    targets,
    write,
)
from benchmarks.fanout.seeding import (
    MIXED_SIGNAL,
    SIGNAL,
    Provider,
    auth,
    new_channel,
    provider,
    seed,
)
from benchmarks.fanout.stack import Stack, running_stack, start_stack
from benchmarks.probe import ws_authorised

# No new booking for this long ends a run early (the rest expired, failed or was refused).
STALL_SECONDS = 8.0
# A run's probes go on at least this long after its signal.
MIN_PROBED_SECONDS = 0.25


@dataclass
class Scenario:
    system: str  # "copier" | "baseline"
    n: int
    accounts: int
    latency_ms: int
    label: str = ""
    # Subscribers per broker kind (an empty map: all on Deriv).
    split: dict[str, int] = field(default_factory=dict)


class SignalRefused(RuntimeError):
    """The API refused a run's signal (a 4xx/5xx, or the WebSocket's ``error``): the run
    measured nothing, and the benchmark goes on with the next one."""


async def one_run(
    *,
    scenario: Scenario,
    stack: Stack,
    client: httpx.AsyncClient,
    sims: dict[str, httpx.AsyncClient],
    who: Provider,
    channel_id: str,
    probe_channel: str,
    baseline_subs: list[dict[str, Any]],
    redis_url: str,
    transport: str,
    progress: Progress,
    timeout: float,
    lag: LedgerLag | None = None,
    signal_body: dict[str, str | int] = SIGNAL,
) -> dict[str, Any]:
    meter = ProcessMeter(stack.pids())
    quiet_after_s = await quiesce(meter, limit=60 + scenario.n / 100)
    await who.fresh(client)
    start = await buys_of(sims)
    meter.start()
    probes = Probes(stack, who, probe_channel, stack.settings.accept_path_nice)
    await probes.start()
    # The main signal's accept is timed in this process, whose full collections (the
    # seeded subscriptions, the runs' ledgers) are long: none may land inside it.
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
                json.dumps(
                    {"type": "signal", "channel_id": channel_id, "ref": "main", **signal_body}
                )
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
                f"/api/v1/channels/{channel_id}/signals", json=signal_body, headers=auth(who)
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
            now_sold = await buys_of(sims)
            done = sum(now_sold[kind] - start[kind] for kind in sims)
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

    accept_ms = t_accept * 1000
    per_broker: dict[str, list[float]] = {
        kind: sorted(
            ms - accept_ms for ms in bookings(kind, await ledger_since(sim, start[kind]), signal_id)
        )
        for kind, sim in sims.items()
    }
    booked = sorted(ms for kind_booked in per_broker.values() for ms in kind_booked)
    placed = len(booked)
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
        # Each broker kind's own bookings, when the subscribers are split between kinds.
        "by_broker": {
            kind: broker_figures(kind_booked, scenario.split.get(kind, 0))
            for kind, kind_booked in per_broker.items()
        }
        if len(sims) > 1
        else None,
        "cpu_s_per_1000_orders": cpu_per_k,
        # Last booking → the ledger acked the last execution (MongoDB holds every order).
        "ledger_lag_ms": ledger_lag_ms,
        "peak_rss_mib": rss,
        # Accept → the provider's live counts hold every order.
        "counted_ms": counted_ms,
        "sent_at": t_send,  # epoch s, to find the run in the services' logs
        "probe_accept_ms": probe_figures(samples, t_send),
    }


def broker_figures(booked: list[float], expected: int) -> dict[str, Any]:
    """One broker kind's placements in a run: how many, and when (ms after the 202)."""
    return {
        "placed": len(booked),
        "expected": expected,
        "first_placed_ms": round(booked[0], 1) if booked else None,
        "last_placed_ms": round(booked[-1], 1) if booked else None,
        "placement_ms": {
            "p50": round(pct(booked, 50), 1),
            "p95": round(pct(booked, 95), 1),
            "p99": round(pct(booked, 99), 1),
        },
    }


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
    # Settings run once per value, together: the i-th values of every key make one stack.
    vary: dict[str, list[str]] | None = None
    keep_data: bool = False  # leave the started stack's DATA_DIR (and logs) behind
    # Percent of each scenario's subscribers on IQ Option accounts (the rest on Deriv);
    # above 0 the signal is one both brokers take (seeding.MIXED_SIGNAL).
    iqoption_share: int = 0


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
                    "--iqoption-login",
                    stack.settings.iqoption_login_endpoint,
                    "--iqoption-ws",
                    stack.settings.iqoption_ws_endpoint,
                ],
                cwd=PROJECT_ROOT,
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
            httpx.AsyncClient(base_url=stack.iq_sim_http, timeout=60) as iq_sim,
            LedgerLag(stack) as lag,
        ):
            sims = {"deriv": sim} | ({"iqoption": iq_sim} if opts.iqoption_share else {})
            signal_body = MIXED_SIGNAL if opts.iqoption_share else SIGNAL
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
                    for one in sims.values():
                        await one.put("/admin/faults", json={"latency_ms": latency})
                    channel_id = await new_channel(client, who, f"bench-{n}-{latency}")
                    progress.console.print(
                        f"seeding {n:,} subscriptions over {accounts:,} accounts"
                    )
                    split = split_of(n, opts.iqoption_share)
                    subs = []
                    for kind, kind_n in split.items():
                        subs += await seed(
                            stack.settings,
                            sims[kind],
                            channel_id,
                            kind_n,
                            max(1, round(accounts * kind_n / n)),
                            kind=kind,
                            signal=signal_body,
                        )
                    runs = opts.runs_for.get(n, opts.runs)
                    if label == "scale-out":
                        scenarios += await scale_out(
                            stack,
                            client,
                            sims,
                            who,
                            channel_id,
                            probe_channel,
                            n,
                            accounts,
                            opts.scale_out_runs,
                            progress,
                            lag,
                            signal_body,
                        )
                        continue
                    for system in ("copier", "baseline") if opts.baseline else ("copier",):
                        scenario = Scenario(
                            system,
                            n,
                            accounts,
                            latency,
                            split={str(k): v for k, v in split.items()},
                        )
                        results = []
                        refused: list[dict[str, Any]] = []
                        for i in range(runs if system == "copier" else max(1, min(runs, 3))):
                            transport = "http" if i % 2 == 0 else "ws"
                            try:
                                result = await one_run(
                                    scenario=scenario,
                                    stack=stack,
                                    client=client,
                                    sims=sims,
                                    who=who,
                                    channel_id=channel_id,
                                    probe_channel=probe_channel,
                                    baseline_subs=subs,
                                    redis_url=stack.settings.redis_url,
                                    transport=transport,
                                    progress=progress,
                                    timeout=run_timeout(n, latency),
                                    lag=lag,
                                    signal_body=signal_body,
                                )
                            except SignalRefused as exc:
                                # What a provider would have seen: reported, not retried.
                                refused.append(
                                    {"run": i, "transport": transport, "error": str(exc)}
                                )
                                progress.console.print(f"[red]run {i}: {exc}[/]")
                                continue
                            results.append(result)
                            progress.console.print(one_line(scenario, result))
                        if not results:
                            raise RuntimeError(f"every run's signal was refused: {refused}")
                        scenarios.append(
                            {
                                "system": system,
                                "n": n,
                                "accounts": accounts,
                                "broker_latency_ms": latency,
                                "split": split,
                                "runs": results,
                                "refused": refused,
                                "median": median_of(results),
                            }
                        )
                        checkpoint(opts.out, scenarios)
            for one in sims.values():
                await one.put("/admin/faults", json={"latency_ms": 0})
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
            "iqoption_share_percent": opts.iqoption_share,
            "signal": MIXED_SIGNAL if opts.iqoption_share else SIGNAL,
        },
        "scenarios": scenarios,
        "comparison": comparison(scenarios),
    }
    report["targets"] = targets(report["comparison"])
    return report


async def scale_out(
    stack: Stack,
    client: httpx.AsyncClient,
    sims: dict[str, httpx.AsyncClient],
    who: Provider,
    channel_id: str,
    probe_channel: str,
    n: int,
    accounts: int,
    runs: int,
    progress: Progress,
    lag: LedgerLag,
    signal_body: dict[str, str | int],
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
                    sims=sims,
                    who=who,
                    channel_id=channel_id,
                    probe_channel=probe_channel,
                    baseline_subs=[],
                    redis_url=stack.settings.redis_url,
                    transport="http",
                    progress=progress,
                    timeout=run_timeout(n, 0),
                    lag=lag,
                    signal_body=signal_body,
                )
                results.append(result)
                progress.console.print(one_line(scenario, result))
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


def split_of(n: int, iqoption_share: int) -> dict[BrokerKind, int]:
    """Subscribers per broker kind for ``n`` with ``iqoption_share`` percent on IQ Option."""
    on_iqoption = round(n * iqoption_share / 100)
    split: dict[BrokerKind, int] = {"deriv": n - on_iqoption, "iqoption": on_iqoption}
    return {kind: count for kind, count in split.items() if count}


def one_line(scenario: Scenario, r: dict[str, Any]) -> str:
    """A run's figures as rich markup (the transport's brackets escaped, so they show)."""
    label = f" {scenario.label}" if scenario.label else ""
    return (
        f"{scenario.system}{label} N={scenario.n:,} lat={scenario.latency_ms} ms "
        f"\\[{r['transport']}]: placed {r['placed']:,}/{r['expected']:,}, accept "
        f"{r['accept_ms']} ms, last {r['last_placed_ms']} ms, {r['orders_per_s']} orders/s, "
        f"probe p99 http {r['probe_accept_ms']['http_p99']} / "
        f"ws {r['probe_accept_ms']['ws_p99']} / ping {r['probe_accept_ms']['ping_p99']} ms"
        + "".join(
            f"; {kind} {b['placed']:,}/{b['expected']:,} last {b['last_placed_ms']} ms "
            f"p50 {b['placement_ms']['p50']} ms"
            for kind, b in (r.get("by_broker") or {}).items()
        )
    )


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
    """The same scenarios once per value of the varied settings, each on a fresh stack
    (e.g. ``ORDER_GROUP_SIZE=1,50,200``: the unit of work on ORDERS; or metrics and JSON
    logs off and on together, ``off,on,on,off`` to interleave them)."""
    assert opts.vary is not None
    keys = list(opts.vary)
    variants = []
    for values in zip(*opts.vary.values(), strict=True):
        setting = dict(zip(keys, values, strict=True))
        console.print("[bold]" + " ".join(f"{k}={v}" for k, v in setting.items()) + "[/]")
        one = replace(opts, vary=None, settings_env={**opts.settings_env, **setting})
        report = asyncio.run(bench(one))
        print_table(report)
        variants.append({"setting": setting, **report})
    print_variants(keys, variants)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "vary": keys,
        "variants": variants,
    }
