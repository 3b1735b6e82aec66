"""Services ride out a restart of the servers they use: a private valkey or nats-server
per test is killed and started again on the same port and data dir."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from apps.core import embedded
from apps.core.redis import connect_redis


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
