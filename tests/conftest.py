"""Real servers for the tests: nats-server, valkey-server and the MongoDB wire server are
started once per session on free ports (the same launch code `copier up` uses) and every
test gets its own namespace: stream names, subjects, Redis keys and database name.

Servers run with PR_SET_PDEATHSIG, so even a killed pytest leaves nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

from apps.core import embedded
from apps.core.nats import connect, ensure_topology
from apps.core.settings import Settings
from apps.core.topology import Topology

# Shared fixtures for every test folder: the Deriv simulator (`sim`) and the live API.
pytest_plugins = [
    "tests.fixtures.deriv_sim",
    "tests.fixtures.iqoption_sim",
    "tests.fixtures.live_api",
    "tests.fixtures.pipeline",
]


@dataclass(frozen=True)
class Servers:
    nats_url: str
    nats_monitor_port: int
    redis_url: str
    mongodb_uri: str
    root: Path


async def _start(spec: embedded.ProcessSpec, log_dir: Path) -> asyncio.subprocess.Process:
    log = (log_dir / f"{spec.name}.log").open("ab")
    try:
        return await embedded.spawn(spec, stdout=log.fileno())
    finally:
        log.close()


@pytest.fixture(scope="session")
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Servers]:
    root = tmp_path_factory.mktemp("servers")
    nats_port, monitor, redis_port, mongo_port = embedded.free_ports(4)
    specs = [
        embedded.nats_spec(root, nats_port, monitor),
        embedded.valkey_spec(root, redis_port),
        # In-memory engine: tests need the wire protocol, not SQLite's durability; normal
        # priority, so that a test's wait on MongoDB does not depend on idle CPU.
        embedded.mongo_spec(None, mongo_port, background=False),
    ]
    processes = [await _start(spec, root) for spec in specs]
    found = Servers(
        nats_url=specs[0].address,
        nats_monitor_port=monitor,
        redis_url=specs[1].address,
        mongodb_uri=specs[2].address,
        root=root,
    )
    try:
        # Bounds for a hung server, not a slow start: on a busy machine the stand-in's
        # Python start-up alone takes tens of seconds.
        await asyncio.gather(
            embedded.wait_healthy(lambda: embedded.nats_healthy(monitor), 120, "nats-server"),
            embedded.wait_healthy(lambda: embedded.redis_healthy(found.redis_url), 120, "valkey"),
            embedded.wait_healthy(
                lambda: embedded.mongo_healthy(found.mongodb_uri), 120, "mongo wire server"
            ),
        )
        yield found
    finally:
        await embedded.stop_all(processes)


@pytest.fixture
def namespace() -> str:
    return new_namespace()


@contextlib.asynccontextmanager
async def namespaced_settings(
    servers: Servers, namespace: str, data_dir: Path
) -> AsyncIterator[Settings]:
    """Settings on the shared servers with private streams/keys/database.

    Whatever declares the streams (a fixture, the API, a service), they are removed
    afterwards so the shared server stays small."""
    from tests.fixtures import deriv_sim  # here: the plugin is registered (and rewritten) by now

    yield Settings(
        nats_url=servers.nats_url,
        redis_url=servers.redis_url,
        mongodb_uri=servers.mongodb_uri,
        mongodb_database=namespace,
        namespace=namespace,
        data_dir=data_dir,
        log_level="DEBUG",
        # The simulator runs time-scaled: contracts end long before their nominal end.
        deriv_watch_lead_seconds=deriv_sim.TIME_SCALED_WATCH_LEAD,
        # Tests of other features subscribe to priced plans directly; the payment tests
        # (tests/integration/payments, the paid journey) turn Stripe on.
        payments="off",
    )
    client = await connect(servers.nats_url, name="pytest-cleanup")
    js = client.jetstream()
    topology = Topology(namespace)
    for base in ("SIGNALS", "ORDERS", "EXECUTIONS"):
        with contextlib.suppress(Exception):
            await js.delete_stream(topology.stream(base))
    await client.close()


def new_namespace() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
async def settings(servers: Servers, namespace: str, tmp_path: Path) -> AsyncIterator[Settings]:
    """Settings for one test: shared servers, private streams/keys/database."""
    async with namespaced_settings(servers, namespace, tmp_path) as found:
        yield found


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[NATS]:
    """A NATS connection with this test's streams and consumers declared."""
    client = await connect(settings.nats_url, name="pytest")
    await ensure_topology(client, Topology(settings.namespace))
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def project_root() -> Iterator[Path]:
    yield embedded.PROJECT_ROOT
