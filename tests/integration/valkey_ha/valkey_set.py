"""A Valkey primary, its replica and three Sentinels on free ports, started from
:func:`apps.core.valkey_ha.valkey_ha_specs` (what `copier up --cluster` runs), one set per
test: the tests kill its processes. The fixture is re-exported by this folder's
conftest."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis.asyncio as redis

from apps.core import embedded
from apps.core.redis import master_address
from apps.core.valkey_ha import sentinel_healthy, valkey_ha_specs
from tests.fixtures.waiting import PATIENCE, wait_for

MASTER = "copier"


@dataclass
class ValkeySet:
    root: Path
    primary_port: int
    replica_port: int
    sentinel_ports: list[int]
    specs: dict[str, embedded.ProcessSpec] = field(default_factory=dict)
    running: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    @property
    def sentinels(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    async def start(self, name: str) -> None:
        log = (self.root / f"{name}.log").open("ab")
        try:
            self.running[name] = await embedded.spawn(self.specs[name], stdout=log.fileno())
        finally:
            log.close()

    def signal(self, name: str, sig: signal.Signals) -> None:
        self.running[name].send_signal(sig)

    async def kill(self, name: str) -> None:
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        await process.wait()

    def node(self, port: int) -> redis.Redis:
        """A plain client of one data node, whatever its role."""
        return redis.Redis(port=port, socket_connect_timeout=1, socket_timeout=5)

    async def primary_is(self, port: int) -> bool:
        return await master_address(self.sentinels, MASTER) == ("127.0.0.1", port)

    async def replica_of(self, port: int, primary: int) -> bool:
        """``port`` serves as an in-sync replica of ``primary``."""
        client = self.node(port)
        try:
            info = await client.info("replication")
        except (redis.RedisError, OSError):
            return False
        finally:
            await client.aclose()
        return bool(
            info.get("role") == "slave"
            and info.get("master_port") == primary
            and info.get("master_link_status") == "up"
        )

    async def healthy(self) -> bool:
        checks = [sentinel_healthy(port, MASTER) for port in self.sentinel_ports]
        return all(await asyncio.gather(*checks))


@pytest.fixture
async def valkey_set(tmp_path: Path) -> AsyncIterator[ValkeySet]:
    ports = embedded.free_ports(5)
    found = ValkeySet(tmp_path, ports[0], ports[1], ports[2:])
    found.specs = {
        spec.name: spec
        for spec in valkey_ha_specs(tmp_path, ports[0], ports[1:2], ports[2:], MASTER)
    }
    try:
        for name in found.specs:
            await found.start(name)
        await wait_for(found.healthy, timeout=PATIENCE, what="every Sentinel sees the set")
        yield found
    finally:
        for process in found.running.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGCONT)
                os.killpg(process.pid, signal.SIGKILL)
        for process in found.running.values():
            await process.wait()
