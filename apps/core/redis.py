"""The Redis (valkey) connection every service uses.

A command that meets a dead pooled socket or a refused connection (Valkey restarting)
is retried on a fresh connection with exponential backoff: for several seconds in the
services, long enough for `copier up` to restart a killed Valkey, so they ride out a
restart without failing the work in hand; for about a second in the API, where a person
waits and an outage is better told at once (a 503 with Retry-After).

Through Sentinel (``REDIS_SENTINELS``) every new connection asks the Sentinels where the
primary is, so the same retries ride out a failover: a command cut off by the primary's
death, or answered READONLY by a demoted one, is sent again to the one promoted. Sentinels
that answer nothing about the primary at start end the process with one line, never a
silent fallback to ``REDIS_URL``.

Replication is asynchronous: a write the primary acknowledged may be missing from the
replica a failover promotes. :func:`confirmed` sends a write and ``WAIT`` on one
connection and counts it as done only once enough replicas hold it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as redis
from redis import Redis as SyncRedis
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import (
    MasterNotFoundError,
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
)
from redis.backoff import EqualJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError, RedisError, ResponseError, TimeoutError
from redis.retry import Retry as SyncRetry

from apps.core.outage import AlreadyWaited
from apps.core.settings import Settings

log = logging.getLogger("redis")

# Waits of 0.05 s doubling to 1 s, each at least half its nominal length (the jitter
# keeps a crowd of clients from reconnecting in step): about 5 to 10 s in all.
RETRIES = 12
# The API's: 0.05 + 0.1 + 0.2 + 0.4 s nominal, under a second in all.
REQUEST_RETRIES = 4
BACKOFF_BASE = 0.05
BACKOFF_CAP = 1.0
# A connection blocks this long for a free slot of a full pool before failing.
POOL_SIZE = 256
POOL_WAIT = 10
# How long a write waits for its replicas: far above what a live replica takes to
# confirm, short enough that an absent one turns into a retry (and a warning) promptly.
REPLICA_WAIT_MS = 1000


def reconnecting_retry(retries: int = RETRIES) -> Retry:
    """Retry on ConnectionError and TimeoutError only: without ``socket_timeout`` a
    TimeoutError can only come from connecting, so no command the server may have run
    is sent twice because it was slow (one cut off by the server's death after it was
    written is sent again, as with redis-py's own default retry)."""
    return Retry(
        EqualJitterBackoff(cap=BACKOFF_CAP, base=BACKOFF_BASE),
        retries,
        supported_errors=(ConnectionError, TimeoutError),
    )


class PrimaryConnection(SentinelManagedConnection):
    """A connection to whichever node the Sentinels name the primary, asking them again
    each time it (re)connects. redis-py's own reconnects a command's retry on the last
    address it had (``send_packed_command`` → ``connect_check_health``), which after a
    failover is the old primary — restarted, it would take writes no replica confirms."""

    _addressed = False  # connect_to has just asked the Sentinels

    async def connect_to(self, address: tuple[str, int]) -> None:
        self._addressed = True
        await super().connect_to(address)  # type: ignore[no-untyped-call]

    async def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        addressed, self._addressed = self._addressed, False
        if not self.is_connected and self.connection_pool.is_master and not addressed:
            self.host, self.port = await self.connection_pool.get_master_address()
        await super().connect_check_health(
            check_health=check_health, retry_socket_connect=retry_socket_connect
        )


class BlockingSentinelConnectionPool(SentinelConnectionPool, BlockingConnectionPool):
    """Connections to whichever node the Sentinels call the primary, at most
    ``max_connections`` of them; a command that finds all busy waits ``timeout`` for one
    (BlockingConnectionPool's get_connection and release) instead of failing at once."""


def parse_sentinels(sentinels: str) -> list[tuple[str, int]]:
    """``"host:port,host:port"`` as addresses; ValueError saying which entry is wrong."""
    addresses = []
    for entry in sentinels.split(","):
        host, _, port = entry.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"REDIS_SENTINELS entry {entry.strip()!r} is not host:port")
        addresses.append((host, int(port)))
    return addresses


# Sentinels answer from memory: a second is plenty, and one paused or unreachable must
# not stall the search for the primary.
_SENTINEL_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 1, "socket_timeout": 1}


def newest_master(states: Sequence[Mapping[str, Any]]) -> tuple[str, int] | None:
    """The primary named by the Sentinels' answers (``SENTINEL MASTERS`` entries of one
    master name) with the newest configuration epoch, among those that see it up: a
    Sentinel that has not yet learnt of a failover still names the old primary (and a
    restarted old primary answers as one until it is turned into a replica), so the
    first answer is not enough."""
    up = [
        state
        for state in states
        if state.get("is_master") and not state.get("is_sdown") and not state.get("is_odown")
    ]
    if not up:
        return None
    newest = max(up, key=lambda state: int(state.get("config-epoch", 0)))
    return str(newest["ip"]), int(newest["port"])


class NewestEpochSentinel(Sentinel):
    """redis-py's Sentinel client, finding the primary by :func:`newest_master` over every
    Sentinel's answer rather than the first Sentinel's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._asking: dict[str, asyncio.Future[tuple[str, int]]] = {}

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        """The primary's address. Callers asking while a search is under way share it: a
        pool that opens a hundred connections at once asks the Sentinels once, not a
        hundred times (nothing is kept once the search is over)."""
        asking = self._asking
        search = asking.get(service_name)
        if search is None:
            search = asking[service_name] = asyncio.ensure_future(self._search(service_name))
            search.add_done_callback(lambda _: asking.pop(service_name, None))
        return await asyncio.shield(search)

    async def _search(self, service_name: str) -> tuple[str, int]:
        answers = await asyncio.gather(
            *(sentinel.sentinel_masters() for sentinel in self.sentinels),
            return_exceptions=True,
        )
        states = [
            answer[service_name]
            for answer in answers
            if isinstance(answer, dict) and service_name in answer
        ]
        found = newest_master(states)
        if found is None:
            errors = [repr(a) for a in answers if isinstance(a, BaseException)]
            raise MasterNotFoundError(
                f"No master found for {service_name!r}" + (f": {errors}" if errors else "")
            )
        return found


async def master_address(sentinels: str, master_name: str) -> tuple[str, int] | None:
    """Where the Sentinels say ``master_name``'s primary is (:func:`newest_master`)."""
    manager = NewestEpochSentinel(parse_sentinels(sentinels), sentinel_kwargs=_SENTINEL_OPTIONS)
    try:
        host, port = await manager.discover_master(master_name)
    except MasterNotFoundError:
        return None
    finally:
        await manager.aclose()
    return str(host), int(port)


def require_sentinels(sentinels: str, master_name: str) -> None:
    """Exit with one line unless some Sentinel of ``sentinels`` monitors ``master_name``
    (up or not: a failover under way is ridden out, a wrong address or name is not).

    It blocks: processes call it once at start, before their event loop runs
    (apps.core.service, apps.api.main)."""
    try:
        addresses = parse_sentinels(sentinels)
    except ValueError as exc:
        log.critical("%s", exc)
        raise SystemExit(2) from None
    problems = []
    for host, port in addresses:
        client = SyncRedis(
            host=host, port=port, retry=SyncRetry(NoBackoff(), 0), **_SENTINEL_OPTIONS
        )
        try:
            client.sentinel_master(master_name)
        except ResponseError as exc:
            problems.append(f"{host}:{port} {exc}")
        except (RedisError, OSError) as exc:
            problems.append(f"{host}:{port} unreachable ({exc})")
        else:
            return
        finally:
            client.close()
    log.critical(
        "no Sentinel of REDIS_SENTINELS=%s monitors REDIS_MASTER_NAME=%s: %s",
        sentinels,
        master_name,
        "; ".join(problems),
    )
    raise SystemExit(2)


def connect_redis(
    url: str, *, retries: int = RETRIES, sentinels: str = "", master_name: str = "copier"
) -> redis.Redis:
    """A pooled client; bytes in and out (values are msgspec-packed, not text). With
    ``sentinels``, to the primary the Sentinels name (``url`` is not used then).

    A command that finds every connection busy waits for one (a whole fan-out taken over
    at once issues a thousand reads together) instead of failing at once."""
    options: dict[str, Any] = {
        "decode_responses": False,
        "socket_connect_timeout": 2,
        "retry": reconnecting_retry(retries),
        # A connection idle this long is pinged before use, so a socket the server
        # dropped meanwhile is replaced before a command is written to it.
        "health_check_interval": 15,
        "max_connections": POOL_SIZE,
        "timeout": POOL_WAIT,
    }
    if not sentinels:
        return redis.Redis.from_pool(BlockingConnectionPool.from_url(url, **options))
    manager = NewestEpochSentinel(parse_sentinels(sentinels), sentinel_kwargs=_SENTINEL_OPTIONS)
    client: redis.Redis = manager.master_for(
        master_name,
        connection_pool_class=BlockingSentinelConnectionPool,
        connection_class=PrimaryConnection,
        **options,
    )
    return client


def connect_redis_from(settings: Settings, *, retries: int = RETRIES) -> redis.Redis:
    """:func:`connect_redis` to where ``settings`` say: REDIS_URL, or the primary the
    Sentinels of REDIS_SENTINELS name."""
    return connect_redis(
        settings.redis_url,
        retries=retries,
        sentinels=settings.redis_sentinels,
        master_name=settings.redis_master_name,
    )


class Unreplicated(AlreadyWaited):
    """A write the primary made that fewer replicas than required confirmed in time. A
    failover could lose it, so it counts as not done: the caller holds its work and sends
    the write again (which writes again, so that the next WAIT covers it)."""


async def confirmed(client: redis.Redis, replicas: int, *command: Any) -> Any:
    """``command``'s reply, once ``replicas`` replicas hold what it wrote (``WAIT`` on the
    same connection, no MULTI: WAIT covers that connection's writes); Unreplicated when
    they do not confirm within REPLICA_WAIT_MS. With ``replicas`` 0, just the command.

    A failover between the two is ridden out by the connection's retries, which send both
    again to the new primary."""
    if replicas <= 0:
        return await client.execute_command(*command)  # type: ignore[no-untyped-call]
    pipe = client.pipeline(transaction=False)
    pipe.execute_command(*command)
    pipe.execute_command("WAIT", replicas, REPLICA_WAIT_MS)
    reply, acked = await pipe.execute()
    if int(acked) < replicas:
        raise Unreplicated(f"{acked} of {replicas} replicas confirmed a write in time")
    return reply
