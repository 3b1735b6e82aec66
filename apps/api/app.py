"""The API's application factory: HTTP + WebSocket front door of the copier."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from litestar import Litestar, get
from litestar.datastructures import State
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from motor.motor_asyncio import AsyncIOMotorClient
from nats.aio.client import Client as NATS
from odmantic import AIOEngine
from redis.asyncio import Redis

from apps.api.frontend import DIST, frontend_router
from apps.core.db import connect_db
from apps.core.nats import connect
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology

log = logging.getLogger("api")


@dataclass
class Infrastructure:
    """The connections one API process holds, opened at start-up and closed at shutdown."""

    settings: Settings
    topology: Topology
    nats: NATS
    redis: Redis
    mongo: AsyncIOMotorClient[Any]
    db: AIOEngine


@get("/health", sync_to_thread=False, include_in_schema=False)
def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@get("/ready", include_in_schema=False)
async def ready(state: State) -> Response[dict[str, Any]]:
    """Readiness: NATS, Redis and MongoDB all answer right now."""
    infra: Infrastructure = state.infra
    checks = dict(
        zip(
            ("nats", "redis", "mongodb"),
            await asyncio.gather(_nats_ok(infra), _redis_ok(infra), _mongo_ok(infra)),
            strict=True,
        )
    )
    ok = all(checks.values())
    return Response(
        {"status": "ready" if ok else "not ready", "checks": checks},
        status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE,
    )


async def _nats_ok(infra: Infrastructure) -> bool:
    if not infra.nats.is_connected:
        return False
    try:
        await asyncio.wait_for(infra.nats.flush(), 1)
    except Exception:
        return False
    return True


async def _redis_ok(infra: Infrastructure) -> bool:
    try:
        return bool(await asyncio.wait_for(infra.redis.ping(), 1))
    except Exception:
        return False


async def _mongo_ok(infra: Infrastructure) -> bool:
    try:
        reply = await asyncio.wait_for(infra.mongo.admin.command("ping"), 1.5)
    except Exception:
        return False
    return bool(reply.get("ok"))


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        nc = await connect(settings.nats_url, name="copier-api")
        mongo, db = connect_db(settings.mongodb_uri, settings.mongodb_database)
        redis = connect_redis(settings.redis_url)
        app.state.infra = Infrastructure(
            settings, Topology(settings.namespace), nc, redis, mongo, db
        )
        try:
            yield
        finally:
            await nc.drain()
            await redis.aclose()
            mongo.close()

    handlers: list[Any] = [health, ready]
    if (DIST / "index.html").is_file():
        handlers.append(frontend_router())
    return Litestar(
        route_handlers=handlers,
        lifespan=[lifespan],
        state=State({"settings": settings}),
        debug=False,
    )
