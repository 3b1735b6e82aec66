"""`copier up` / `copier down` / `copier status`: the whole system on one machine.

`up` starts the embedded infrastructure (nats-server, valkey-server, the MongoDB wire
server), declares the JetStream topology from `nats/`, then every service that exists in
this checkout (API, router, broker workers, broker simulators) as supervised child
processes. It shows a status table, prefixes every child's log lines with its name and
stops everything on Ctrl-C/SIGTERM. `--detach` runs the same supervisor in the
background for scripts; `down` stops it.

This module says what the stack is (:func:`build_children`) and holds the commands; the
supervision itself (restarts with backoff, health, the status file) is
:mod:`cli.supervisor`. A restarted child keeps its ports and data dirs, so JetStream's file
store, Valkey's append-only file and the MongoDB stand-in's SQLite file keep their state.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from apps.core import embedded, nats_users, valkey_ha
from apps.core.embedded import EmbeddedError, HealthCheck, ProcessSpec
from apps.core.settings import Settings, SettingsError
from apps.notifier.telegram_sim.server import DEV_TOKEN as TELEGRAM_DEV_TOKEN
from cli.output import CliError
from cli.supervisor import COLORS, STATE_FILE, Child, Supervisor

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

PID_FILE = "copier.pid"
LOG_FILE = "copier.log"


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


# `--cluster`: NATS nodes, and Sentinels, each on its base port + 0, 1, 2.
CLUSTER_SIZE = 3
# The NATS user each process of the stack connects as (nats/auth.conf); the supervisor
# declares the topology as the admin user.
NATS_USERS = {
    "api": "api",
    "router": "router",
    "worker-deriv": "worker-deriv",
    "worker-iqoption": "worker-iqoption",
    "ledger": "ledger",
    "notifier": "notifier",
}


def cluster_ports(base: int) -> list[int]:
    return [base + i for i in range(CLUSTER_SIZE)]


# Each port setting of the stack and how many ports from it the stack may take (a
# cluster's nodes take the base + 0, 1, 2; the services' metrics + 0 to 6).
PORTS = {
    "NATS_PORT": 3,
    "NATS_MONITOR_PORT": 3,
    "NATS_CLUSTER_PORT": 3,
    "REDIS_PORT": 3,
    "REDIS_SENTINEL_PORT": 3,
    "MONGODB_PORT": 1,
    "API_PORT": 1,
    "DERIV_SIM_PORT": 1,
    "IQOPTION_SIM_PORT": 1,
    "STRIPE_SIM_PORT": 1,
    "TELEGRAM_SIM_PORT": 1,
    "METRICS_PORT": 7,
}


def free_ports_env() -> dict[str, str]:
    """Every port setting on a block of free ports, no two blocks overlapping."""
    taken: list[int] = []
    env = {}
    for name, count in PORTS.items():
        base = embedded.free_port_block(count, avoid=taken)
        taken += range(base, base + count)
        env[name] = str(base)
    return env


def embedded_settings(settings: Settings) -> Settings:
    """The stack's own servers are where its services connect, whatever the URLs said."""
    mongodb_uri = f"mongodb://127.0.0.1:{settings.mongodb_port}/?directConnection=true"
    redis_url = f"redis://127.0.0.1:{settings.redis_port}/0"
    if not settings.cluster:
        return replace(
            settings,
            nats_url=f"nats://127.0.0.1:{settings.nats_port}",
            redis_url=redis_url,
            mongodb_uri=mongodb_uri,
        )
    return replace(
        settings,
        nats_url=",".join(f"nats://127.0.0.1:{p}" for p in cluster_ports(settings.nats_port)),
        redis_url=redis_url,
        redis_sentinels=",".join(
            f"127.0.0.1:{p}" for p in cluster_ports(settings.redis_sentinel_port)
        ),
        nats_replicas=CLUSTER_SIZE,
        redis_wait_replicas=1,
        mongodb_uri=mongodb_uri,
    )


def as_nats_user(settings: Settings, user: str) -> Settings:
    """``settings`` for a process of the stack that connects as ``user``: the passwords
    the stack generated in DATA_DIR on a cluster; no credentials on the single node."""
    if not settings.cluster:
        return settings
    passwords = nats_users.ensure_passwords(settings.data_dir)
    return replace(settings, nats_user=user, nats_password=passwords[user])


def _infrastructure(settings: Settings) -> list[tuple[ProcessSpec, HealthCheck]]:
    """NATS, Valkey and the MongoDB stand-in: one of each, or the cluster's topology."""
    data = settings.data_dir
    # What a signal's accept waits for (NATS, Redis, the API) runs ahead of the fan-out's
    # processes when they share the CPUs: see Settings.accept_path_nice.
    ahead = settings.accept_path_nice
    servers: list[tuple[ProcessSpec, HealthCheck]] = []
    if settings.cluster:
        passwords = nats_users.ensure_passwords(data)
        monitors = cluster_ports(settings.nats_monitor_port)
        nodes = embedded.nats_cluster_specs(
            data,
            cluster_ports(settings.nats_port),
            monitors,
            cluster_ports(settings.nats_cluster_port),
            nats_users.server_env(passwords),
        )
        for node, monitor in zip(nodes, monitors, strict=True):
            # Healthy once in touch with the JetStream meta leader: a node that cannot join
            # the cluster never is, and the start-up fails naming it.
            check = _joined_check(monitor)
            servers.append((replace(node, nice=ahead), check))
        valkeys = valkey_ha.valkey_ha_specs(
            data,
            settings.redis_port,
            # Two replicas: with one, losing either node would hold every placement
            # until it came back (a marker must be on a replica before the broker call).
            [settings.redis_port + 1, settings.redis_port + 2],
            cluster_ports(settings.redis_sentinel_port),
            settings.redis_master_name,
        )
        for spec in valkeys:
            servers.append((replace(spec, nice=ahead), _valkey_check(spec, settings)))
    else:
        servers.append(
            (
                replace(
                    embedded.nats_spec(data, settings.nats_port, settings.nats_monitor_port),
                    nice=ahead,
                ),
                _nats_check(settings.nats_monitor_port),
            )
        )
        valkey = replace(embedded.valkey_spec(data, settings.redis_port), nice=ahead)
        servers.append((valkey, _valkey_check(valkey, settings)))
    mongo = embedded.mongo_spec(data, settings.mongodb_port)
    servers.append((mongo, lambda: embedded.mongo_healthy(mongo.address)))
    return servers


def _nats_check(monitor_port: int) -> HealthCheck:
    return lambda: embedded.nats_healthy(monitor_port)


def _joined_check(monitor_port: int) -> HealthCheck:
    return lambda: embedded.nats_cluster_healthy(monitor_port)


def _valkey_check(spec: ProcessSpec, settings: Settings) -> HealthCheck:
    if spec.name.startswith("sentinel"):
        port = spec.ports[0]
        return lambda: valkey_ha.sentinel_healthy(port, settings.redis_master_name)
    return lambda: embedded.redis_healthy(spec.address)


def _services(settings: Settings) -> list[tuple[str, str, int]]:
    """(name, module, nice) of every service process; each one's place in this list is
    its metrics port's offset from METRICS_PORT (router 0, ledger 1, Deriv workers 2, ...,
    the other routers, the IQ Option workers, then the notifier), so the ports stay the
    same from one `up` to the next and no two processes share one."""
    routers = CLUSTER_SIZE - 1 if settings.cluster else 1
    workers = max(settings.worker_processes, 2 if settings.cluster else 1)
    services = [
        ("router-1" if routers > 1 else "router", "apps.router.main", 0),
        ("ledger", "apps.ledger.main", embedded.BOOKKEEPING_NICE),
    ]
    # Several worker processes share the broker-deriv consumer (WORKER_PROCESSES).
    services += [
        ("worker-deriv" if i == 1 else f"worker-deriv-{i}", "apps.brokers.deriv.worker", 0)
        for i in range(1, workers + 1)
    ]
    services += [(f"router-{i}", "apps.router.main", 0) for i in range(2, routers + 1)]
    # The IQ Option workers share the broker-iqoption consumer (IQOPTION_WORKER_PROCESSES).
    services += [
        ("worker-iqoption" if i == 1 else f"worker-iqoption-{i}", "apps.brokers.iqoption.worker", 0)
        for i in range(1, settings.iqoption_worker_processes + 1)
    ]
    # Last, so that the ports before it stay where they were.
    services.append(("notifier", "apps.notifier.main", embedded.BOOKKEEPING_NICE))
    return services


def nats_env(settings: Settings, user: str) -> dict[str, str]:
    """NATS_USER and NATS_PASSWORD of a process that connects as ``user`` on a cluster."""
    if not settings.cluster:
        return {}
    own = as_nats_user(settings, user)
    return {"NATS_USER": own.nats_user, "NATS_PASSWORD": own.nats_password}


def _user_of(name: str) -> str:
    return next(user for prefix, user in NATS_USERS.items() if name.startswith(prefix))


def build_children(settings: Settings) -> list[Child]:
    """Infrastructure first, then every service present in this checkout."""
    data = settings.data_dir
    py = sys.executable
    # Without a bot token the notifier talks to the local Telegram stand-in (development).
    telegram_sim = not settings.telegram_bot_token
    if telegram_sim:
        settings = replace(
            settings,
            telegram_api_url=f"http://127.0.0.1:{settings.telegram_sim_port}",
            telegram_bot_token=TELEGRAM_DEV_TOKEN,
        )
    env = settings.as_env()
    children: list[Child] = []

    def add(spec: ProcessSpec, health: HealthCheck, infra: bool, metrics_url: str = "") -> None:
        color = COLORS[len(children) % len(COLORS)]
        children.append(Child(spec, health, infra, color, metrics_url=metrics_url))

    for spec, health in _infrastructure(settings):
        add(spec, health, True)

    if _module_exists("apps.brokers.deriv.simulator"):
        port = settings.deriv_sim_port
        spec = ProcessSpec(
            "sim-deriv",
            [
                py,
                "-m",
                "apps.brokers.deriv.simulator",
                "--port",
                str(port),
                # Its accounts and contracts outlive a restart, like the brokers' own.
                "--data-dir",
                str(data / "deriv-sim"),
                *(["--config", settings.deriv_sim_config] if settings.deriv_sim_config else []),
            ],
            ports=(port,),
            address=f"ws://127.0.0.1:{port}/websockets/v3",
            env=env,
        )
        add(spec, lambda: embedded.http_ok(f"http://127.0.0.1:{port}/health"), False)
    if _module_exists("apps.brokers.iqoption.simulator"):
        iq_port = settings.iqoption_sim_port
        spec = ProcessSpec(
            "sim-iqoption",
            [
                py,
                "-m",
                "apps.brokers.iqoption.simulator",
                "--port",
                str(iq_port),
                # Its accounts, sessions and options outlive a restart, like the broker's.
                "--data-dir",
                str(data / "iqoption-sim"),
                *(
                    ["--config", settings.iqoption_sim_config]
                    if settings.iqoption_sim_config
                    else []
                ),
            ],
            ports=(iq_port,),
            address=f"ws://127.0.0.1:{iq_port}/echo/websocket",
            env=env,
        )
        add(spec, lambda: embedded.http_ok(f"http://127.0.0.1:{iq_port}/health"), False)
    if settings.payments == "stripe" and not settings.stripe_api_url:
        stripe_port = settings.stripe_sim_port
        spec = ProcessSpec(
            "sim-stripe",
            [py, "-m", "apps.payments.stripe_sim", "--port", str(stripe_port)],
            ports=(stripe_port,),
            address=f"http://127.0.0.1:{stripe_port}",
            env=env,
        )
        add(spec, lambda: embedded.http_ok(f"http://127.0.0.1:{stripe_port}/health"), False)
    if telegram_sim:
        tg_port = settings.telegram_sim_port
        spec = ProcessSpec(
            "sim-telegram",
            [py, "-m", "apps.notifier.telegram_sim", "--port", str(tg_port)],
            ports=(tg_port,),
            address=f"http://127.0.0.1:{tg_port}",
            env=env,
        )
        add(spec, lambda: embedded.http_ok(f"http://127.0.0.1:{tg_port}/health"), False)
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    api = ProcessSpec(
        "api",
        [py, "-m", "apps.api.main"],
        ports=(settings.api_port,),
        address=api_url,
        env={**env, **nats_env(settings, _user_of("api"))},
        nice=settings.accept_path_nice,
    )
    api_metrics = f"{api_url}/metrics" if settings.metrics_enabled else ""
    add(api, lambda: embedded.http_ok(f"{api_url}/ready"), False, api_metrics)
    host = socket.gethostname()
    for offset, (name, module, nice) in enumerate(_services(settings)):
        if _module_exists(module):
            # A stable name per process: a restarted worker picks up its own pending
            # settlements, two workers never share one, and every process's JSON log
            # lines name it ("instance").
            child_env = {
                **env,
                **nats_env(settings, _user_of(name)),
                "WORKER_ID": f"{host}-{name}",
            }
            metrics_port = settings.metrics_port + offset
            metrics_url = ""
            ports: tuple[int, ...] = ()
            if settings.metrics_enabled:
                child_env["METRICS_PORT"] = str(metrics_port)
                metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
                ports = (metrics_port,)
            spec = ProcessSpec(name, [py, "-m", module], ports=ports, env=child_env, nice=nice)
            add(spec, _alive_check(children, name), False, metrics_url)
    return children


def _alive_check(children: list[Child], name: str) -> HealthCheck:
    async def check() -> bool:
        child = next(c for c in children if c.spec.name == name)
        return child.running

    return check


# ---- commands ------------------------------------------------------------------------

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where servers keep their data (env DATA_DIR; ./data)."),
]


def _settings(data_dir: Path | None, *, cluster: bool = False) -> Settings:
    try:
        overrides: dict[str, Any] = {"cluster": True} if cluster else {}
        if data_dir is not None:
            overrides["data_dir"] = data_dir.expanduser().resolve()
        return embedded_settings(Settings.from_env(**overrides))
    except SettingsError as exc:
        raise CliError(str(exc), 2) from exc


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _running_pid(settings: Settings) -> int | None:
    path = settings.data_dir / PID_FILE
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    if _pid_alive(pid):
        return pid
    path.unlink(missing_ok=True)
    return None


def _preflight(settings: Settings, children: list[Child]) -> None:
    env_names = {
        settings.nats_port: "NATS_PORT",
        settings.nats_monitor_port: "NATS_MONITOR_PORT",
        settings.redis_port: "REDIS_PORT",
        **(
            {
                **{p: "NATS_PORT" for p in cluster_ports(settings.nats_port)},
                **{p: "NATS_MONITOR_PORT" for p in cluster_ports(settings.nats_monitor_port)},
                **{p: "NATS_CLUSTER_PORT" for p in cluster_ports(settings.nats_cluster_port)},
                **{p: "REDIS_SENTINEL_PORT" for p in cluster_ports(settings.redis_sentinel_port)},
                settings.redis_port + 1: "REDIS_PORT",
                settings.redis_port + 2: "REDIS_PORT",
            }
            if settings.cluster
            else {}
        ),
        settings.mongodb_port: "MONGODB_PORT",
        settings.api_port: "API_PORT",
        settings.deriv_sim_port: "DERIV_SIM_PORT",
        settings.iqoption_sim_port: "IQOPTION_SIM_PORT",
        settings.stripe_sim_port: "STRIPE_SIM_PORT",
        settings.telegram_sim_port: "TELEGRAM_SIM_PORT",
        settings.metrics_port: "METRICS_PORT",
    }
    embedded.check_ports_free([c.spec for c in children], env_names)


def up(
    data_dir: DataDirOption = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Run in the background; stop with `down`.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds each start-up phase may take.")] = 60,
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster",
            help="The production topology: 3 NATS nodes (R3, a user per service), Valkey "
            "with 2 replicas and 3 Sentinels, 2 routers, 2 workers (env CLUSTER).",
        ),
    ] = False,
) -> None:
    """Start nats-server, valkey, MongoDB wire server and every service, supervised.

    Example: `copier up` (Ctrl-C stops everything), or `copier up --detach` then
    `copier status` and `copier down`; `copier up --cluster` for the scaled-out topology.
    """
    settings = _settings(data_dir, cluster=cluster)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    running = _running_pid(settings)
    if running:
        raise CliError(
            f"a stack is already running on {settings.data_dir} (pid {running}) — "
            f"`copier down` stops it",
            2,
        )
    try:
        children = build_children(settings)
        _preflight(settings, children)
    except EmbeddedError as exc:
        raise CliError(str(exc), 2) from exc
    if detach:
        _detach(settings, timeout)
        return
    (settings.data_dir / PID_FILE).write_text(str(os.getpid()))
    try:
        supervisor = Supervisor(
            settings,
            children,
            live=console.is_terminal,
            declare_settings=as_nats_user(settings, "admin"),
        )
        code = asyncio.run(supervisor.run(timeout))
    finally:
        (settings.data_dir / PID_FILE).unlink(missing_ok=True)
    raise typer.Exit(code)


def _detach(settings: Settings, timeout: float) -> None:
    """Start the supervisor in the background and return once its stack is ready."""
    log_path = settings.data_dir / LOG_FILE
    (settings.data_dir / STATE_FILE).unlink(missing_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "cli.main", "up"),
                *("--data-dir", str(settings.data_dir), "--timeout", str(timeout)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=embedded.PROJECT_ROOT,
            env={**os.environ, **settings.as_env()},
        )
    deadline = time.monotonic() + 2 * timeout + 5
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            err_console.print("\n".join(tail))
            raise CliError(f"the stack exited with code {code}; log: {log_path}", code or 1)
        state = _read_state(settings)
        if state and state.get("ready"):
            _print_state(state)
            console.print(f"stack running in the background (pid {process.pid}); log: {log_path}")
            return
        time.sleep(0.2)
    process.terminate()
    raise CliError(f"the stack did not become ready; log: {log_path}")


def _read_state(settings: Settings) -> dict[str, Any] | None:
    try:
        return json.loads((settings.data_dir / STATE_FILE).read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def _print_state(state: dict[str, Any]) -> None:
    table = Table(title="Cloud Trade Copier — embedded stack", title_justify="left")
    for column in ("service", "pid", "address", "healthy", "restarts", "last exit"):
        table.add_column(column)
    for service in state["services"]:
        table.add_row(
            service["name"],
            str(service["pid"] or "-"),
            service["address"] or "-",
            "[green]yes[/]" if service["healthy"] else "[red]no[/]",
            str(service.get("restarts", 0)),
            service.get("last_exit") or "-",
        )
    console.print(table)


def down(
    data_dir: DataDirOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a clean stop.")] = 30,
) -> None:
    """Stop a stack started with `copier up --detach` (or in another terminal)."""
    settings = _settings(data_dir)
    pid = _running_pid(settings)
    if pid is None:
        console.print(f"no stack is running on {settings.data_dir}")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        raise CliError(f"the stack (pid {pid}) did not stop within {timeout:.0f} s; killed it")
    (settings.data_dir / PID_FILE).unlink(missing_ok=True)
    console.print(f"stack stopped (pid {pid})")


def status(
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show every service of a running stack and whether it is healthy (exit 1 if not)."""
    settings = _settings(data_dir)
    state = _read_state(settings) if _running_pid(settings) else None
    if state is None:
        if as_json:
            console.print_json(json.dumps({"running": False, "services": []}))
        else:
            err_console.print(f"no stack is running on {settings.data_dir}")
        raise typer.Exit(1)
    if as_json:
        print(json.dumps({"running": True, **state}))
    else:
        _print_state(state)
    raise typer.Exit(0 if state.get("ready") else 1)


def register(app: typer.Typer) -> None:
    """Attach the stack commands to the top-level app."""
    app.command()(up)
    app.command()(down)
    app.command()(status)
