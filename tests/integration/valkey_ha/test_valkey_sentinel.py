"""Valkey through Sentinel: the set `copier up --cluster` starts comes up healthy, a
client connected through the Sentinels keeps writing while the primary is killed and the
replica promoted, and the old primary, restarted from its own files, returns as a
replica of the new one. Sentinels that point nowhere stop a service at start."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys

from apps.core import embedded
from apps.core.redis import confirmed, connect_redis
from tests.fixtures.waiting import PATIENCE, wait_for
from tests.integration.valkey_ha.valkey_set import MASTER, ValkeySet


async def test_a_client_keeps_writing_through_a_failover(valkey_set: ValkeySet) -> None:
    client = connect_redis("", sentinels=valkey_set.sentinels, master_name=MASTER)
    try:
        await client.set("greeting", b"hello")
        assert await client.get("greeting") == b"hello"
        # A write a replica confirmed (WAIT): the data nodes replicate.
        assert await confirmed(client, 1, "SET", "confirmed", "yes")

        written: list[int] = []

        async def keep_writing() -> None:
            # Each INCR either answers or raises: the retries must carry it across.
            for n in itertools.count(1):
                await client.incr("counter")
                written.append(n)
                await asyncio.sleep(0.01)

        writer = asyncio.create_task(keep_writing())
        await wait_for(lambda: len(written) > 10, what="writes before the failover")
        await valkey_set.kill("valkey-1")
        await wait_for(
            lambda: valkey_set.primary_is(valkey_set.replica_port),
            timeout=PATIENCE,
            what="the Sentinels to promote valkey-2",
        )
        before = len(written)
        await wait_for(
            lambda: writer.done() or len(written) > before + 10,
            what="writes on the promoted primary",
        )
        assert not writer.done(), writer.exception()
        writer.cancel()
        # Nothing the client was told was written is missing on the new primary, save
        # what asynchronous replication may lose: the counter only grew.
        assert int(await client.get("counter") or 0) >= before

        # The old primary, restarted from its own configuration, is made a replica of
        # the promoted one (Sentinel rewrites its file), not a second primary.
        await valkey_set.start("valkey-1")
        await wait_for(
            lambda: valkey_set.replica_of(valkey_set.primary_port, valkey_set.replica_port),
            timeout=PATIENCE,
            what="the old primary to rejoin as a replica",
        )
        assert await valkey_set.primary_is(valkey_set.replica_port)
        assert await confirmed(client, 1, "SET", "after", "rejoined")
    finally:
        await client.aclose()


async def test_writes_follow_the_promoted_primary_not_the_restarted_old_one(
    valkey_set: ValkeySet,
) -> None:
    """An old primary restarted before the Sentinels make it a replica answers as a
    primary: a client reconnecting after the failover must still write to the promoted
    one, or what it writes is lost when the old one is turned into a replica."""
    client = connect_redis("", sentinels=valkey_set.sentinels, master_name=MASTER)
    try:
        await client.set("before", b"1")
        valkey_set.signal("valkey-1", signal.SIGSTOP)  # it stops answering
        # A write on its way to the stopped primary: it waits for an answer.
        write = asyncio.create_task(client.set("after", b"2"))
        await wait_for(
            lambda: valkey_set.primary_is(valkey_set.replica_port),
            timeout=PATIENCE,
            what="the Sentinels to promote valkey-2",
        )
        # The write's connection breaks; redis-py retries it on a new connection while
        # the old primary comes back, a primary of its own until Sentinel turns it.
        await valkey_set.kill("valkey-1")
        await valkey_set.start("valkey-1")
        await write
        promoted = valkey_set.node(valkey_set.replica_port)
        try:
            assert await promoted.get("after") == b"2"
        finally:
            await promoted.aclose()
    finally:
        await client.aclose()


def test_sentinels_that_point_nowhere_stop_a_service_with_one_line() -> None:
    """Checked at start, before the service's event loop runs."""
    nowhere = f"127.0.0.1:{embedded.free_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "apps.router.main"],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        cwd=embedded.PROJECT_ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(embedded.PROJECT_ROOT),
            "REDIS_SENTINELS": nowhere,
            "METRICS_ENABLED": "false",
        },
    )
    output = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == 2
    assert len(output) == 1, output
    assert "no Sentinel of REDIS_SENTINELS" in output[0]
    assert nowhere in output[0]
