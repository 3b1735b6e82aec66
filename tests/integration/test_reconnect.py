"""Services ride out a restart of the servers they use, and stop cleanly while one is
away: a private valkey or nats-server per test is killed (and started again on the same
port and data dir)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from apps.core import embedded
from apps.core.nats import connect
from apps.core.redis import connect_redis
from apps.core.service import CANCEL_GRACE_SECONDS, SHUTDOWN_GRACE_SECONDS
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.conftest import Servers
from tests.fixtures.waiting import wait_for


class Server:
    """One embedded server that a test may kill and start again."""

    def __init__(self, spec: embedded.ProcessSpec, log: Path) -> None:
        self.spec = spec
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, healthy: embedded.HealthCheck) -> None:
        with self.log.open("ab") as log:
            self.process = await embedded.spawn(self.spec, stdout=log.fileno())
        await embedded.wait_healthy(healthy, 60, self.spec.name)

    async def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            await self.kill()


@pytest.fixture
async def valkey(tmp_path: Path) -> AsyncIterator[Server]:
    server = Server(embedded.valkey_spec(tmp_path, embedded.free_port()), tmp_path / "valkey.log")
    await server.start(lambda: embedded.redis_healthy(server.spec.address))
    try:
        yield server
    finally:
        await server.stop()


async def test_a_command_after_a_valkey_restart_succeeds_on_a_fresh_connection(
    valkey: Server,
) -> None:
    client = connect_redis(valkey.spec.address)
    try:
        await client.set(b"kept", b"1")
        assert await client.get(b"kept") == b"1"  # the pool now holds a connection

        async def read_kept() -> object:
            return await client.get(b"kept")

        await valkey.kill()
        # Issued while the server is down: the retries carry it over the restart.
        read = asyncio.create_task(read_kept())
        await valkey.start(lambda: embedded.redis_healthy(valkey.spec.address))

        assert await asyncio.wait_for(read, 30) == b"1"  # the append-only file kept it
        assert await client.incr(b"counter") == 1
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[Server]:
    monitor = embedded.free_port()
    server = Server(
        embedded.nats_spec(tmp_path, embedded.free_port(), monitor), tmp_path / "nats.log"
    )
    await server.start(lambda: embedded.nats_healthy(monitor))
    try:
        yield server
    finally:
        await server.stop()


# service → (module, stream, durable consumer it pulls from)
SERVICES = {
    "router": ("apps.router.main", "SIGNALS", "router"),
    "ledger": ("apps.ledger.main", "EXECUTIONS", "ledger"),
    "worker-deriv": ("apps.brokers.deriv.worker", "ORDERS", "broker-deriv"),
    "worker-iqoption": ("apps.brokers.iqoption.worker", "ORDERS", "broker-iqoption"),
}


@pytest.mark.parametrize("away", ["nats", "valkey"])
@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_a_service_stopped_while_a_server_is_away_exits_cleanly(
    service: str,
    away: str,
    nats_server: Server,
    valkey: Server,
    servers: Servers,
    namespace: str,
    tmp_path: Path,
) -> None:
    module, stream, durable = SERVICES[service]
    settings = Settings(
        nats_url=nats_server.spec.address,
        redis_url=valkey.spec.address,
        mongodb_uri=servers.mongodb_uri,
        mongodb_database=namespace,
        namespace=namespace,
        data_dir=tmp_path,
    )
    log_path = tmp_path / f"{service}.log"
    spec = embedded.ProcessSpec(service, [sys.executable, "-m", module], env=settings.as_env())
    with log_path.open("ab") as log:
        process = await embedded.spawn(spec, stdout=log.fileno())
    try:
        # Working: its pull request waits on its consumer.
        nc = await connect(settings.nats_url, name="pytest")
        js = nc.jetstream()

        async def pulling() -> bool:
            assert process.returncode is None, log_path.read_text()
            with contextlib.suppress(Exception):
                info = await js.consumer_info(Topology(namespace).stream(stream), durable)
                return bool(info.num_waiting)
            return False

        await wait_for(pulling, what=f"{service} to pull from its consumer", every=0.1)
        await nc.close()

        await (nats_server if away == "nats" else valkey).kill()
        before = len(log_path.read_text())
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 60)
        took = time.monotonic() - stopped_at
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    output = log_path.read_text()
    print(output[before:], f"exit {code} after {took:.1f} s")
    assert code == 0, output
    assert took < SHUTDOWN_GRACE_SECONDS + CANCEL_GRACE_SECONDS + 10
    assert "Traceback" not in output[before:], output[before:]
