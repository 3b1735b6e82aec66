"""MongoDB through odmantic: the source of truth, kept off the per-order hot path."""

from __future__ import annotations

from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient
from odmantic import AIOEngine


def connect_db(uri: str, database: str) -> tuple[AsyncIOMotorClient[Any], AIOEngine]:
    """Return the motor client (close it at shutdown) and the odmantic engine on it."""
    client: AsyncIOMotorClient[Any] = AsyncIOMotorClient(
        uri, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000, tz_aware=True
    )
    return client, AIOEngine(client=client, database=database)
