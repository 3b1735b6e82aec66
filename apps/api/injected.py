"""Annotated types for what handlers receive by dependency injection.

Litestar 2.23+ wants injected parameters marked explicitly (inference goes away in 3.0);
these aliases keep handler signatures short and readable.
"""

from __future__ import annotations

from typing import TypeVar

from litestar.di import NamedDependency
from litestar.params import FromPath
from odmantic import AIOEngine
from redis.asyncio import Redis

from apps.api.auth.tokens import TokenService
from apps.core.settings import Settings
from apps.core.topology import Topology

T = TypeVar("T")

Db = NamedDependency[AIOEngine]
RedisClient = NamedDependency[Redis]
TopologyDep = NamedDependency[Topology]
SettingsDep = NamedDependency[Settings]
Tokens = NamedDependency[TokenService]
PathStr = FromPath[str]
