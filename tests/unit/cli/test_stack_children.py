"""What `copier up` starts, from its settings (no process is started here)."""

from __future__ import annotations

from pathlib import Path

from apps.core.settings import Settings
from cli.stack import build_children


def test_worker_processes_start_that_many_workers_each_with_its_own_id(tmp_path: Path) -> None:
    children = build_children(Settings.from_env({}, data_dir=tmp_path, worker_processes=3))

    workers = [c.spec for c in children if c.spec.name.startswith("worker-deriv")]
    assert [w.name for w in workers] == ["worker-deriv", "worker-deriv-2", "worker-deriv-3"]
    ids = [w.env["WORKER_ID"] for w in workers]
    assert len(set(ids)) == 3
    assert all(i.endswith(w.name) for i, w in zip(ids, workers, strict=True))


def test_book_keeping_runs_behind_the_signal_path(tmp_path: Path) -> None:
    children = build_children(Settings.from_env({}, data_dir=tmp_path))
    by_name = {c.spec.name: c.spec for c in children}

    assert by_name["mongodb"].background
    assert by_name["ledger"].nice > 0
    for name in ("router", "worker-deriv", "sim-deriv"):
        assert by_name[name].nice == 0 and not by_name[name].background
    # What everything waits for runs ahead of the fan-out's processes.
    for name in ("api", "nats", "valkey"):
        assert by_name[name].nice < 0 and not by_name[name].background
    level = Settings.from_env({"ACCEPT_PATH_NICE": "0"}, data_dir=tmp_path)
    assert {c.spec.nice for c in build_children(level) if c.spec.name in ("api", "nats")} == {0}
