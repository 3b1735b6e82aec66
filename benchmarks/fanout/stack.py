"""The stack a benchmark runs against: one it starts (`copier up --detach` on free ports and
a temporary DATA_DIR, gone with its data afterwards) or one already running, and the extra
processes (routers, workers) a scale-out run adds beside it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from apps.core.embedded import PROJECT_ROOT
from apps.core.settings import Settings
from benchmarks.fanout.report import console
from cli.stack import as_nats_user, embedded_settings, free_ports_env, nats_env
from cli.supervisor import STATE_FILE

# Signals stay valid this long on the benchmark's own stack, so a slow fan-out is measured
# to its last order instead of expiring the tail (settings default: 5 s).
BENCH_ENV = {"SIGNAL_VALIDITY_SECONDS": "120"}


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
    def iq_sim_http(self) -> str:
        return f"http://127.0.0.1:{self.settings.iqoption_sim_port}"

    @property
    def ws_url(self) -> str:
        return self.api_url.replace("http", "ws", 1) + "/api/v1/ws"

    def pids(self) -> dict[str, int]:
        """Service name → pid, from the supervisor's state (what `copier status --json` shows)."""
        state = json.loads((self.settings.data_dir / STATE_FILE).read_text())
        pids = {s["name"]: s["pid"] for s in state["services"] if s["pid"]}
        for i, process in enumerate(self.extra):
            pids[f"extra-{i}-{cast(list[str], process.args)[2]}"] = process.pid
        for i, process in enumerate(self.baseline):
            pids[f"baseline-{i}"] = process.pid
        return pids

    @property
    def reader(self) -> Settings:
        """The benchmark's own connections: the read-only ops user on a cluster."""
        return as_nats_user(self.settings, "ops")

    def env(self) -> dict[str, str]:
        return {**os.environ, **self.settings.as_env(), "PYTHONPATH": str(PROJECT_ROOT)}

    def start_extra(self, module: str, name: str) -> None:
        user = "router" if module == "apps.router.main" else "worker-deriv"
        log = (self.settings.data_dir / f"{name}.log").open("ab")
        self.extra.append(
            subprocess.Popen(
                [sys.executable, "-m", module],
                env={**self.env(), **nats_env(self.settings, user), "WORKER_ID": name},
                cwd=PROJECT_ROOT,
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
        DATA_DIR holds hundreds of MB: Valkey's AOF, JetStream, the MongoDB stand-in) unless
        ``keep_data``; the services' logs are in it too, so a failed benchmark keeps it."""
        self.stop_extra()
        if self.owned:
            subprocess.run(
                [sys.executable, "-m", "cli.main", "down"],
                env=self.env(),
                cwd=PROJECT_ROOT,
                check=False,
                capture_output=True,
            )
            if keep_data:
                console.print(f"the stack's data and logs are kept in {self.settings.data_dir}")
            else:
                shutil.rmtree(self.settings.data_dir, ignore_errors=True)


def start_stack(overrides: dict[str, str], parent: Path | None = None) -> Stack:
    """``parent``: where the temporary DATA_DIR goes (default: the system's temp dir)."""
    data_dir = Path(tempfile.mkdtemp(prefix="copier-bench-", dir=parent))
    # Deriv closes forex at weekends and IQ Option's simulator has no trading hours: a
    # signal both brokers take (seeding.MIXED_SIGNAL, forex) is measured any day.
    deriv_sim_config = data_dir / "deriv-sim.json"
    deriv_sim_config.write_text(json.dumps({"forex_closed_at_weekends": False}))
    env = {
        "DATA_DIR": str(data_dir),
        **free_ports_env(),
        "LOG_LEVEL": "WARNING",
        "DERIV_SIM_CONFIG": str(deriv_sim_config),
        **BENCH_ENV,
        **overrides,
    }
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "up", "--detach"],
        env={**os.environ, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        # What `copier up` said goes above the one error line the CLI ends with.
        sys.stderr.write(result.stdout + result.stderr)
        raise RuntimeError(f"copier up failed (logs in {data_dir})")
    settings = embedded_settings(Settings.from_env({**os.environ, **env}))
    return Stack(settings, f"http://127.0.0.1:{settings.api_port}", owned=True)


def running_stack(url: str) -> Stack:
    return Stack(embedded_settings(Settings.from_env()), url.rstrip("/"), owned=False)
