"""Where `copier up`'s processes serve their metrics, and `copier status --json` says so."""

from __future__ import annotations

import json
from pathlib import Path

from apps.core.settings import Settings
from cli.stack import build_children
from cli.supervisor import STATE_FILE, Supervisor


def test_router_ledger_and_each_worker_get_a_metrics_port_of_their_own(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"METRICS_PORT": "9600"},
        data_dir=tmp_path,
        worker_processes=2,
        iqoption_worker_processes=2,
    )
    by_name = {c.spec.name: c for c in build_children(settings)}

    expected = {
        "router": 9600,
        "ledger": 9601,
        "worker-deriv": 9602,
        "worker-deriv-2": 9603,
        "worker-iqoption": 9604,
        "worker-iqoption-2": 9605,
    }
    for name, port in expected.items():
        child = by_name[name]
        assert child.spec.env["METRICS_PORT"] == str(port)
        assert port in child.spec.ports  # checked free before `up` starts anything
        assert child.metrics_url == f"http://127.0.0.1:{port}/metrics"
    assert by_name["api"].metrics_url == f"http://127.0.0.1:{settings.api_port}/metrics"
    assert not by_name["nats"].metrics_url


def test_without_metrics_no_process_takes_a_metrics_port(tmp_path: Path) -> None:
    settings = Settings.from_env({"METRICS_ENABLED": "false"}, data_dir=tmp_path)
    children = build_children(settings)

    assert all(not c.metrics_url for c in children)
    assert all(settings.metrics_port not in c.spec.ports for c in children)


def test_status_json_lists_every_processs_metrics_url(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=tmp_path)
    children = build_children(settings)
    Supervisor(settings, children, live=False)._write_state()

    state = json.loads((tmp_path / STATE_FILE).read_text())
    urls = {s["name"]: s["metrics_url"] for s in state["services"]}
    assert urls["router"] == f"http://127.0.0.1:{settings.metrics_port}/metrics"
    assert urls["api"].endswith("/metrics") and urls["valkey"] is None
