"""What `copier up` starts, from its settings (no process is started here)."""

from __future__ import annotations

from pathlib import Path

from apps.core.settings import Settings
from cli.stack import build_children
from cli.supervisor import (
    MAX_RESTART_DELAY,
    STABLE_SECONDS,
    deaths_in_a_row,
    describe_exit,
    restart_delay,
)


def test_worker_processes_start_that_many_workers_each_with_its_own_id(tmp_path: Path) -> None:
    children = build_children(Settings.from_env({}, data_dir=tmp_path, worker_processes=3))

    workers = [c.spec for c in children if c.spec.name.startswith("worker-deriv")]
    assert [w.name for w in workers] == ["worker-deriv", "worker-deriv-2", "worker-deriv-3"]
    ids = [w.env["WORKER_ID"] for w in workers]
    assert len(set(ids)) == 3
    assert all(i.endswith(w.name) for i, w in zip(ids, workers, strict=True))


def test_iqoption_worker_processes_start_that_many_iqoption_workers(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=tmp_path, iqoption_worker_processes=2)
    children = build_children(settings)

    workers = [c.spec for c in children if c.spec.name.startswith("worker-iqoption")]
    assert [w.name for w in workers] == ["worker-iqoption", "worker-iqoption-2"]
    assert all(w.argv[-1] == "apps.brokers.iqoption.worker" for w in workers)
    ids = [w.env["WORKER_ID"] for w in workers]
    assert len(set(ids)) == 2
    # Their metrics ports are their own, after every Deriv worker's.
    ports = [p for c in children for p in c.spec.ports if c.metrics_url]
    assert len(ports) == len(set(ports))


def test_book_keeping_runs_behind_the_signal_path(tmp_path: Path) -> None:
    children = build_children(Settings.from_env({}, data_dir=tmp_path))
    by_name = {c.spec.name: c.spec for c in children}

    assert by_name["mongodb"].background
    assert by_name["ledger"].nice > 0
    for name in ("router", "worker-deriv", "sim-deriv", "sim-iqoption"):
        assert by_name[name].nice == 0 and not by_name[name].background
    # What everything waits for runs ahead of the fan-out's processes.
    for name in ("api", "nats", "valkey"):
        assert by_name[name].nice < 0 and not by_name[name].background
    level = Settings.from_env({"ACCEPT_PATH_NICE": "0"}, data_dir=tmp_path)
    assert {c.spec.nice for c in build_children(level) if c.spec.name in ("api", "nats")} == {0}


def test_each_broker_simulator_runs_on_its_port_with_its_own_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"DERIV_SIM_PORT": "18701", "IQOPTION_SIM_PORT": "18702"}, data_dir=tmp_path
    )
    by_name = {c.spec.name: c.spec for c in build_children(settings)}

    for name, module, port, data_dir, path in (
        ("sim-deriv", "apps.brokers.deriv.simulator", 18701, "deriv-sim", "/websockets/v3"),
        (
            "sim-iqoption",
            "apps.brokers.iqoption.simulator",
            18702,
            "iqoption-sim",
            "/echo/websocket",
        ),
    ):
        spec = by_name[name]
        assert tuple(spec.ports) == (port,)
        assert list(spec.argv[1:]) == [
            "-m",
            module,
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / data_dir),
        ]
        assert spec.address == f"ws://127.0.0.1:{port}{path}"


def test_restarts_wait_longer_for_each_death_in_a_row_up_to_a_cap() -> None:
    delays = [restart_delay(n) for n in range(1, 10)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert delays == sorted(delays) and max(delays) == MAX_RESTART_DELAY == delays[-1]


def test_a_child_that_stayed_healthy_a_while_starts_its_backoff_over() -> None:
    assert deaths_in_a_row(0, 0.0) == 1
    assert deaths_in_a_row(3, 0.0) == 4  # died before it ever became healthy
    assert deaths_in_a_row(3, STABLE_SECONDS / 2) == 4
    assert deaths_in_a_row(3, STABLE_SECONDS) == 1


def test_an_exit_names_its_signal_or_its_code() -> None:
    assert describe_exit(-9) == "killed by SIGKILL (exit code -9)"
    assert describe_exit(1) == "exit code 1"
    assert describe_exit(0) == "exit code 0"
