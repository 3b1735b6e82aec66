"""NATS with the users of nats/auth.conf: a 3-node cluster from `nats_cluster_specs`, or
one node running server.conf and auth.conf (the same users and permissions, no cluster),
each on free ports with passwords generated as `copier up --cluster` generates them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from apps.core import embedded
from apps.core.nats import NATS_DIR
from apps.core.nats_users import ensure_passwords, server_env
from apps.core.settings import Settings


@dataclass
class AuthNats:
    """Running nats-server(s) with users; ``url`` lists every node."""

    root: Path
    specs: list[embedded.ProcessSpec]
    monitor_ports: list[int]
    passwords: dict[str, str]
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)
    # A cluster node is ready once it follows a meta leader (embedded.nats_cluster_healthy).
    clustered: bool = False

    @property
    def url(self) -> str:
        return ",".join(spec.address for spec in self.specs)

    def settings_for(self, base: Settings, user: str, *, replicas: int = 1) -> Settings:
        """``base`` as ``user`` on these servers, in the default namespace: the permissions
        of nats/auth.conf name the production subjects only."""
        return replace(
            base,
            nats_url=self.url,
            nats_user=user,
            nats_password=self.passwords[user],
            nats_replicas=replicas,
            namespace="",
        )

    def log(self) -> str:
        return "".join(
            (self.root / f"{spec.name}.log").read_text(errors="replace") for spec in self.specs
        )

    async def start(self) -> None:
        for spec in self.specs:
            with (self.root / f"{spec.name}.log").open("ab") as log:
                self.processes.append(await embedded.spawn(spec, stdout=log.fileno()))
        healthy = embedded.nats_cluster_healthy if self.clustered else embedded.nats_healthy

        async def up(port: int) -> bool:
            if any(p.returncode is not None for p in self.processes):
                raise AssertionError(f"a nats-server exited:\n{self.log()}")
            return await healthy(port)

        await asyncio.gather(
            *(
                embedded.wait_healthy(lambda p=port: up(p), 60, "nats-server")
                for port in self.monitor_ports
            )
        )

    async def stop(self) -> None:
        await embedded.stop_all(self.processes)


def cluster_of_three(root: Path, *, started: int = 3) -> AuthNats:
    """The first ``started`` nodes of a 3-node cluster on free ports, routed to all three
    (not yet started); ready once they follow a meta leader when they are a quorum."""
    root.mkdir()
    passwords = ensure_passwords(root)
    free = embedded.free_ports(9)
    ports, monitors, routes = free[0:3], free[3:6], free[6:9]
    specs = embedded.nats_cluster_specs(root, ports, monitors, routes, server_env(passwords))
    return AuthNats(root, specs[:started], monitors[:started], passwords, clustered=started >= 2)


@pytest.fixture
async def nats_cluster(tmp_path: Path) -> AsyncIterator[AuthNats]:
    servers = cluster_of_three(tmp_path / "cluster")
    try:
        await servers.start()
        yield servers
    finally:
        await servers.stop()


@pytest.fixture
async def auth_node(tmp_path: Path) -> AsyncIterator[AuthNats]:
    """One node, no cluster: nats/cluster.conf needs routes, so this runs the two files it
    includes."""
    root = tmp_path / "auth-node"
    root.mkdir()
    passwords = ensure_passwords(root)
    config = root / "node.conf"
    # nats-server resolves an include against the including file's folder, even a path
    # that starts with "/".
    shared = os.path.relpath(NATS_DIR, root)
    config.write_text(f'include "{shared}/server.conf"\ninclude "{shared}/auth.conf"\n')
    port, monitor = embedded.free_port(), embedded.free_port()
    argv = [
        embedded.find_binary("nats-server"),
        "--config",
        str(config),
        "--server_name",
        "auth-node",
        "--addr",
        "127.0.0.1",
        "--port",
        str(port),
        "--http_port",
        str(monitor),
        "--jetstream",
        "--store_dir",
        str(root / "store"),
    ]
    spec = embedded.ProcessSpec(
        "auth-node",
        argv,
        ports=(port, monitor),
        address=f"nats://127.0.0.1:{port}",
        env=server_env(passwords),
    )
    servers = AuthNats(root, [spec], [monitor], passwords)
    try:
        await servers.start()
        yield servers
    finally:
        await servers.stop()
