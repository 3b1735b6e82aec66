"""`copier up` as a user runs it: real processes, real ports, real data dir.

Every wait is for an event (a status, a pid gone) with bounds a busy machine meets: the
MongoDB stand-in runs only on CPU nothing else wants (SCHED_IDLE), so while other work
keeps both cores busy it starts and stops in minutes, not seconds."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import pytest
import redis
from pymongo import MongoClient

from apps.core.embedded import PROJECT_ROOT
from apps.core.nats import load_definitions
from apps.core.topology import Topology
from cli.stack import free_ports_env
from tests.fixtures.waiting import wait_for

INFRA = {"nats", "valkey", "mongodb"}
# How long each start-up phase may take (`copier up --timeout`): a bound for a hung start.
PHASE_SECONDS = 300
# Processes told to stop exit within this: they drain and close on SIGTERM.
EXIT_SECONDS = 240

# Each start launches a dozen processes (three servers, the services, three simulators)
# on two cores.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        # Every port the stack listens on, the simulators' and metrics' included.
        **free_ports_env(),
        "LOG_LEVEL": "INFO",
    }
    yield env
    # Whatever happened in the test, leave nothing running.
    copier(env, "down", check=False)


def copier(
    env: dict[str, str], *args: str, check: bool = True, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """One `copier` command to its end; the bound only stops a hung command (`up --detach`
    waits for its stack, `down` for every process to exit)."""
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"copier {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def status(env: dict[str, str]) -> dict[str, object]:
    return json.loads(copier(env, "status", "--json", check=False).stdout)  # type: ignore[no-any-return]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); look at its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def survivors(pids: dict[str, int]) -> dict[str, int]:
    return {name: pid for name, pid in pids.items() if alive(pid)}


async def all_exited(pids: dict[str, int]) -> None:
    await wait_for(
        lambda: not survivors(pids),
        timeout=EXIT_SECONDS,
        what=f"every child to exit (alive: {survivors(pids)})",
        every=0.2,
    )


def service_pids(env: dict[str, str]) -> dict[str, int]:
    return {s["name"]: s["pid"] for s in status(env)["services"]}  # type: ignore[attr-defined]


async def ready(env: dict[str, str]) -> None:
    await wait_for(
        lambda: status(env).get("ready") is True,
        timeout=PHASE_SECONDS,
        what="the stack to report ready",
        every=0.5,
    )


def supervise(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`copier up` in the foreground of a child process, with generous start-up phases;
    what it prints goes to :func:`output`'s file (a pipe nobody reads would stall it)."""
    with output_path(env).open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", "up", "--timeout", str(PHASE_SECONDS)],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def output_path(env: dict[str, str]) -> Path:
    return Path(env["DATA_DIR"]).parent / "up.log"


def output(env: dict[str, str]) -> str:
    return output_path(env).read_text(errors="replace")


async def test_stack_starts_healthy_keeps_data_across_restart_and_stops_clean(
    stack_env: dict[str, str],
) -> None:
    copier(stack_env, "up", "--detach", "--timeout", str(PHASE_SECONDS))
    first = status(stack_env)
    services = {s["name"]: s for s in first["services"]}  # type: ignore[attr-defined]
    assert INFRA | {"api"} <= set(services)
    assert all(s["healthy"] for s in services.values()), services

    # The declared topology is on the server, and data goes in.
    nats_url = f"nats://127.0.0.1:{stack_env['NATS_PORT']}"
    mongo_uri = f"mongodb://127.0.0.1:{stack_env['MONGODB_PORT']}/?directConnection=true"

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    streams, _ = load_definitions(Topology())
    for stream in streams:
        info = await js.stream_info(stream.name)
        assert info.config.subjects == stream.config["subjects"]
    ack = await js.publish("signals.restart-probe", b"kept", headers={"Nats-Msg-Id": "p1"})
    assert ack.stream == "SIGNALS"
    await nc.close()
    with MongoClient(mongo_uri) as mongo:
        mongo.copier.probe.insert_one({"_id": "restart", "kept": True})
    sim_admin = f"http://127.0.0.1:{stack_env['DERIV_SIM_PORT']}/admin/accounts"
    broker_account = httpx.post(sim_admin, json={"balance": "50"}, timeout=30).json()
    iq_sim = f"http://127.0.0.1:{stack_env['IQOPTION_SIM_PORT']}"
    (iq_account,) = httpx.post(
        f"{iq_sim}/admin/accounts", json={"balance": "75"}, timeout=30
    ).json()["accounts"]

    pids = {name: s["pid"] for name, s in services.items()}
    copier(stack_env, "down")
    await all_exited(pids)

    copier(stack_env, "up", "--detach", "--timeout", str(PHASE_SECONDS))
    assert await last_probe(nats_url) == b"kept"
    with MongoClient(mongo_uri) as mongo:
        assert mongo.copier.probe.find_one({"_id": "restart"}) == {"_id": "restart", "kept": True}
    # The Deriv simulator's accounts too: linked broker accounts keep working.
    kept = {a["loginid"]: a for a in httpx.get(sim_admin, timeout=30).json()["accounts"]}
    assert kept[broker_account["loginid"]]["balance"] == 50
    # And the IQ Option simulator's: the same password still logs in.
    login = httpx.post(
        f"{iq_sim}/api/v2/login",
        data={"identifier": iq_account["email"], "password": iq_account["password"]},
        timeout=30,
    )
    assert login.status_code == 200 and login.json()["data"]["ssid"]

    pids = service_pids(stack_env)
    copier(stack_env, "down")
    await all_exited(pids)
    assert status(stack_env) == {"running": False, "services": []}


async def last_probe(nats_url: str) -> bytes:
    nc = await nats.connect(nats_url)
    msg = await nc.jetstream().get_last_msg("SIGNALS", "signals.restart-probe")
    await nc.close()
    return msg.data or b""


def test_a_taken_port_gives_one_clear_line_and_a_nonzero_exit(stack_env: dict[str, str]) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(stack_env["API_PORT"])))
        blocker.listen()
        result = copier(stack_env, "up", check=False)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"port {stack_env['API_PORT']} (api) is already in use" in lines[0]
    assert "API_PORT" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


async def test_ctrl_c_and_a_crashed_child_leave_no_process_behind(
    stack_env: dict[str, str],
) -> None:
    data_dir = Path(stack_env["DATA_DIR"])
    supervisor = supervise(stack_env)
    try:
        await ready(stack_env)
        services = service_pids(stack_env)

        # A service that crashes is restarted; the others keep running.
        os.kill(services["api"], signal.SIGKILL)

        def api_restarted() -> bool:
            now = {s["name"]: s for s in status(stack_env)["services"]}  # type: ignore[attr-defined]
            return bool(now["api"]["pid"] != services["api"] and now["api"]["healthy"])

        await wait_for(
            api_restarted, timeout=PHASE_SECONDS, what="the API restarted and healthy", every=0.5
        )
        pids = service_pids(stack_env)

        supervisor.send_signal(signal.SIGINT)
        supervisor.wait(timeout=EXIT_SECONDS)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
    printed = output(stack_env)
    assert supervisor.returncode == 0, printed
    assert "api died: killed by SIGKILL" in printed
    assert " nats |" in printed  # log lines carry the service name
    assert not survivors(pids)
    assert not (data_dir / "copier.pid").exists()


async def test_killed_servers_are_restarted_on_their_ports_with_their_data(
    stack_env: dict[str, str],
) -> None:
    supervisor = supervise(stack_env)
    try:
        await ready(stack_env)
        before = {s["name"]: s for s in status(stack_env)["services"]}  # type: ignore[attr-defined]
        nats_url = f"nats://127.0.0.1:{stack_env['NATS_PORT']}"
        with redis.Redis(port=int(stack_env["REDIS_PORT"])) as valkey:
            valkey.set("restart-probe", "kept")
        nc = await nats.connect(nats_url)
        await nc.jetstream().publish("signals.restart-probe", b"kept")
        await nc.close()

        killed_at = time.monotonic()
        for name in ("valkey", "nats"):
            os.kill(before[name]["pid"], signal.SIGKILL)

        def servers_back() -> bool:
            now = {s["name"]: s for s in status(stack_env)["services"]}  # type: ignore[attr-defined]
            return all(
                now[n]["healthy"] and now[n]["pid"] != before[n]["pid"] and now[n]["restarts"] == 1
                for n in ("valkey", "nats")
            )

        await wait_for(
            servers_back, timeout=PHASE_SECONDS, what="valkey and nats restarted", every=0.5
        )
        print(f"valkey and nats healthy again {time.monotonic() - killed_at:.1f} s after SIGKILL")
        after = {s["name"]: s for s in status(stack_env)["services"]}  # type: ignore[attr-defined]
        assert after["valkey"]["last_exit"] == "killed by SIGKILL (exit code -9)"

        with redis.Redis(port=int(stack_env["REDIS_PORT"])) as valkey:
            assert valkey.get("restart-probe") == b"kept"  # the append-only file
        assert await last_probe(nats_url) == b"kept"  # the JetStream file store
        # The services found the servers again: the whole stack is ready.
        await ready(stack_env)
        supervisor.send_signal(signal.SIGINT)
        supervisor.wait(timeout=EXIT_SECONDS)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
    printed = output(stack_env)
    assert "valkey died: killed by SIGKILL (exit code -9)" in printed
    assert "restarting nats (restart 1)" in printed


async def test_a_killed_supervisor_takes_its_children_with_it(stack_env: dict[str, str]) -> None:
    supervisor = supervise(stack_env)
    try:
        await ready(stack_env)
        pids = service_pids(stack_env)
        supervisor.kill()
        supervisor.wait(timeout=EXIT_SECONDS)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
    # Each child hears of it from the kernel (SIGTERM on its parent's death) and exits.
    await all_exited(pids)
