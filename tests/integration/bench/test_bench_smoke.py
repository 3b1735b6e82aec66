"""The fan-out benchmark in its CI size: `copier bench --smoke` end to end (its own stack
on free ports), and the JSON it writes has every figure with sane values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from apps.core.embedded import PROJECT_ROOT


def test_smoke_benchmark_places_every_order_and_runs_the_baseline(tmp_path: Path) -> None:
    out = tmp_path / "fanout.json"
    scratch = tmp_path / "tmp"  # where the benchmark's stack keeps its DATA_DIR
    scratch.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "bench", "--smoke", "--out", str(out)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Fan-out benchmark" in result.stdout
    # The stack it started is gone with its data (a 10k run leaves ~300 MB otherwise).
    assert list(scratch.iterdir()) == []
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1 and report["machine"]["python"]
    by_system = {s["system"]: s for s in report["scenarios"]}
    assert set(by_system) == {"copier", "baseline"}
    for system in by_system.values():
        assert system["n"] == 200
        (run,) = system["runs"]
        assert run["placed"] == 200, run
        assert 0 < run["accept_ms"] < 5_000
        assert 0 <= run["first_placed_ms"] <= run["last_placed_ms"] < 60_000
        p = run["placement_ms"]
        assert p["p50"] <= p["p95"] <= p["p99"] <= run["last_placed_ms"]
        assert run["orders_per_s"] > 0
    copier = by_system["copier"]["runs"][0]
    assert copier["cpu_s_per_1000_orders"]["worker-deriv"] > 0
    assert copier["peak_rss_mib"]["router"] > 0 and copier["restarted"] == []
    probes = copier["probe_accept_ms"]
    assert probes["http_n"] > 0 and probes["ws_n"] > 0 and probes["ping_n"] > 0
    assert probes["refused"] == []
    assert 0 < probes["http_p50"] <= probes["http_p99"] < 5_000
    assert 0 < probes["ws_idle_p50"] < 5_000
    # The probes went on until the provider's live counts held every order.
    assert copier["last_placed_ms"] <= copier["counted_ms"] < 60_000
    # The ledger had every execution in MongoDB some time after the last placement.
    assert copier["ledger_lag_ms"] is not None and copier["ledger_lag_ms"] >= 0
    (row,) = report["comparison"]
    assert row["throughput_ratio"] > 0
    # The smoke size has no target of its own (targets are for 10k and 100k).
    assert report["targets"] == []


def test_smoke_benchmark_splits_subscribers_between_brokers(tmp_path: Path) -> None:
    """`--iqoption-share 50`: half the subscribers on IQ Option, both worker kinds and the
    baseline place every order, and each broker's placements are reported on their own."""
    out = tmp_path / "mixed.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "bench",
            "--smoke",
            "--iqoption-share",
            "50",
            "--out",
            str(out),
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["settings"]["signal"]["asset"] == "EURUSD"
    for system in report["scenarios"]:
        assert system["split"] == {"deriv": 100, "iqoption": 100}
        (run,) = system["runs"]
        assert run["placed"] == 200, (system["system"], run)
        for kind in ("deriv", "iqoption"):
            broker = run["by_broker"][kind]
            assert broker["placed"] == broker["expected"] == 100, (system["system"], kind)
            assert 0 <= broker["first_placed_ms"] <= broker["last_placed_ms"] < 60_000
            assert broker["last_placed_ms"] <= run["last_placed_ms"]
    copier = next(s for s in report["scenarios"] if s["system"] == "copier")
    cpu = copier["runs"][0]["cpu_s_per_1000_orders"]
    assert cpu["worker-deriv"] > 0 and cpu["worker-iqoption"] > 0


@pytest.mark.parametrize(
    ("varied", "says"),
    [
        (["ORDER_GROUP_SIZE"], "--vary wants KEY=V1,V2"),
        (["METRICS_ENABLED=false,true", "LOG_FORMAT=text"], "as many values as the others"),
    ],
    ids=["no-values", "uneven-values"],
)
def test_vary_wants_settings_with_as_many_values_each(varied: list[str], says: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "bench", *(a for v in varied for a in ("--vary", v))],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert says in result.stderr
