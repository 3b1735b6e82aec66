"""`copier up` as a user runs it: real processes, real ports, real data dir."""

from __future__ import annotations

import asyncio
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

from apps.core.embedded import PROJECT_ROOT, free_port
from apps.core.nats import load_definitions
from apps.core.topology import Topology

INFRA = {"nats", "valkey", "mongodb"}

# Each start launches eight processes (three servers, five services) on two cores.
pytestmark = pytest.mark.timeout(360)


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "NATS_PORT": str(free_port()),
        "NATS_MONITOR_PORT": str(free_port()),
        "REDIS_PORT": str(free_port()),
        "MONGODB_PORT": str(free_port()),
        "API_PORT": str(free_port()),
        "DERIV_SIM_PORT": str(free_port()),
        "LOG_LEVEL": "INFO",
    }
    yield env
    # Whatever happened in the test, leave nothing running.
    copier(env, "down", check=False)


def copier(
    env: dict[str, str], *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
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


def wait_until(predicate: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_stack_starts_healthy_keeps_data_across_restart_and_stops_clean(
    stack_env: dict[str, str],
) -> None:
    copier(stack_env, "up", "--detach")
    first = status(stack_env)
    services = {s["name"]: s for s in first["services"]}  # type: ignore[attr-defined]
    assert INFRA | {"api"} <= set(services)
    assert all(s["healthy"] for s in services.values()), services

    # The declared topology is on the server, and data goes in.
    nats_url = f"nats://127.0.0.1:{stack_env['NATS_PORT']}"
    mongo_uri = f"mongodb://127.0.0.1:{stack_env['MONGODB_PORT']}/?directConnection=true"

    async def write_and_check_streams() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        streams, _ = load_definitions(Topology())
        for stream in streams:
            info = await js.stream_info(stream.name)
            assert info.config.subjects == stream.config["subjects"]
        ack = await js.publish("signals.restart-probe", b"kept", headers={"Nats-Msg-Id": "p1"})
        assert ack.stream == "SIGNALS"
        await nc.close()

    asyncio.run(write_and_check_streams())
    with MongoClient(mongo_uri) as mongo:
        mongo.copier.probe.insert_one({"_id": "restart", "kept": True})
    sim_admin = f"http://127.0.0.1:{stack_env['DERIV_SIM_PORT']}/admin/accounts"
    broker_account = httpx.post(sim_admin, json={"balance": "50"}).json()

    pids = [s["pid"] for s in services.values()]
    copier(stack_env, "down")
    wait_until(lambda: not any(alive(p) for p in pids), 15)

    copier(stack_env, "up", "--detach")

    async def read_back() -> bytes:
        nc = await nats.connect(nats_url)
        msg = await nc.jetstream().get_last_msg("SIGNALS", "signals.restart-probe")
        await nc.close()
        return msg.data or b""

    assert asyncio.run(read_back()) == b"kept"
    with MongoClient(mongo_uri) as mongo:
        assert mongo.copier.probe.find_one({"_id": "restart"}) == {"_id": "restart", "kept": True}
    # The Deriv simulator's accounts too: linked broker accounts keep working.
    kept = {a["loginid"]: a for a in httpx.get(sim_admin).json()["accounts"]}
    assert kept[broker_account["loginid"]]["balance"] == 50

    second = status(stack_env)
    pids = [s["pid"] for s in second["services"]]  # type: ignore[attr-defined]
    copier(stack_env, "down")
    wait_until(lambda: not any(alive(p) for p in pids), 15)
    assert status(stack_env) == {"running": False, "services": []}


def test_a_taken_port_gives_one_clear_line_and_a_nonzero_exit(stack_env: dict[str, str]) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(stack_env["API_PORT"])))
        blocker.listen()
        result = copier(stack_env, "up", check=False, timeout=30)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"port {stack_env['API_PORT']} (api) is already in use" in lines[0]
    assert "API_PORT" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_ctrl_c_and_a_crashed_child_leave_no_process_behind(stack_env: dict[str, str]) -> None:
    data_dir = Path(stack_env["DATA_DIR"])
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "up"],
        env=stack_env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: status(stack_env).get("ready") is True, 90)
        services = {s["name"]: s["pid"] for s in status(stack_env)["services"]}  # type: ignore[attr-defined]

        # A service that crashes is restarted; the others keep running.
        os.kill(services["api"], signal.SIGKILL)

        def api_restarted() -> bool:
            now = {s["name"]: s for s in status(stack_env)["services"]}  # type: ignore[attr-defined]
            return now["api"]["pid"] != services["api"] and now["api"]["healthy"]

        wait_until(api_restarted, 60)
        pids = [s["pid"] for s in status(stack_env)["services"]]  # type: ignore[attr-defined]

        supervisor.send_signal(signal.SIGINT)
        output, _ = supervisor.communicate(timeout=60)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
    assert supervisor.returncode == 0, output
    assert "api died: killed by SIGKILL" in output
    assert " nats |" in output  # log lines carry the service name
    assert not any(alive(p) for p in pids)
    assert not (data_dir / "copier.pid").exists()


def test_killed_servers_are_restarted_on_their_ports_with_their_data(
    stack_env: dict[str, str],
) -> None:
    copier(stack_env, "up", "--detach")
    before = {s["name"]: s for s in status(stack_env)["services"]}  # type: ignore[attr-defined]
    nats_url = f"nats://127.0.0.1:{stack_env['NATS_PORT']}"
    with redis.Redis(port=int(stack_env["REDIS_PORT"])) as valkey:
        valkey.set("restart-probe", "kept")

    async def publish() -> None:
        nc = await nats.connect(nats_url)
        await nc.jetstream().publish("signals.restart-probe", b"kept")
        await nc.close()

    asyncio.run(publish())

    killed_at = time.monotonic()
    for name in ("valkey", "nats"):
        os.kill(before[name]["pid"], signal.SIGKILL)

    def servers_back() -> bool:
        now = {s["name"]: s for s in status(stack_env)["services"]}  # type: ignore[attr-defined]
        return all(
            now[n]["healthy"] and now[n]["pid"] != before[n]["pid"] and now[n]["restarts"] == 1
            for n in ("valkey", "nats")
        )

    wait_until(servers_back, 90)
    print(f"valkey and nats healthy again {time.monotonic() - killed_at:.1f} s after SIGKILL")
    after = {s["name"]: s for s in status(stack_env)["services"]}  # type: ignore[attr-defined]
    assert after["valkey"]["last_exit"] == "killed by SIGKILL (exit code -9)"

    with redis.Redis(port=int(stack_env["REDIS_PORT"])) as valkey:
        assert valkey.get("restart-probe") == b"kept"  # the append-only file

    async def read_back() -> bytes:
        nc = await nats.connect(nats_url)
        msg = await nc.jetstream().get_last_msg("SIGNALS", "signals.restart-probe")
        await nc.close()
        return msg.data or b""

    assert asyncio.run(read_back()) == b"kept"  # the JetStream file store
    # The services found the servers again: the whole stack is ready.
    wait_until(lambda: status(stack_env).get("ready") is True, 90)
    log = (Path(stack_env["DATA_DIR"]) / "copier.log").read_text()
    assert "valkey died: killed by SIGKILL (exit code -9)" in log
    assert "restarting nats (restart 1)" in log


def test_a_killed_supervisor_takes_its_children_with_it(stack_env: dict[str, str]) -> None:
    copier(stack_env, "up", "--detach")
    state = status(stack_env)
    pids = [s["pid"] for s in state["services"]]  # type: ignore[attr-defined]
    os.kill(int(state["supervisor_pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    wait_until(lambda: not any(alive(p) for p in pids), 20)
