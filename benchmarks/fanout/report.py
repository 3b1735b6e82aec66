"""What a benchmark reports: medians per scenario, the seed's ratio, the issue's targets,
the tables on the console and the JSON file in benchmarks/results/."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from apps.core.embedded import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "benchmarks" / "results"

# Wide enough for the results table when output goes to a file or CI log.
console = Console(highlight=False, width=max(140, Console().width))


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
        # Each broker kind's medians, when the subscribers were split between kinds.
        "by_broker": {
            kind: {
                "placed": med(lambda r, k=kind: r["by_broker"][k]["placed"]),
                "last_placed_ms": med(lambda r, k=kind: r["by_broker"][k]["last_placed_ms"]),
                "p50_ms": med(lambda r, k=kind: r["by_broker"][k]["placement_ms"]["p50"]),
                "p95_ms": med(lambda r, k=kind: r["by_broker"][k]["placement_ms"]["p95"]),
                "p99_ms": med(lambda r, k=kind: r["by_broker"][k]["placement_ms"]["p99"]),
            }
            for kind in (runs[0].get("by_broker") or {})
        }
        or None,
    }


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


def checkpoint(out: Path | None, scenarios: list[dict[str, Any]]) -> None:
    """Scenarios so far, beside the final file: a long benchmark cut short keeps them."""
    path = (out or RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-fanout.json").with_suffix(
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


def print_variants(keys: list[str], variants: list[dict[str, Any]]) -> None:
    """One row per value of the varied settings and size: the copier's medians."""
    table = Table(title=f"{' / '.join(keys)}: medians per value", title_justify="left")
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
                " / ".join(variant["setting"][key] for key in keys),
                f"{scenario['n']:,}",
                str(scenario["median"]["last_placed_ms"]),
                str(scenario["median"]["orders_per_s"]),
                str(scenario["median"]["p50_ms"]),
                f"{cpu:.3f}",
            )
    console.print(table)
