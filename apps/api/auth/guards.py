"""Who is calling: the access token → :class:`Principal`, and the role checks on it.

Authentication is a dependency rather than a global middleware: a handler that takes a
``principal`` is protected, one that does not is public, and the route table says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.di import NamedDependency
from odmantic import AIOEngine
from redis.asyncio import Redis

from apps.api.auth.tokens import InvalidToken, TokenClaims, TokenService
from apps.api.errors import Forbidden, Unauthorized
from apps.api.injected import Db, RedisClient, Tokens, TopologyDep
from apps.api.models import Channel, User
from apps.core.topology import Topology


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    token: TokenClaims

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def is_admin(self) -> bool:
        return self.user.is_admin

    @property
    def may_own_channels(self) -> bool:
        return self.user.is_admin or self.user.account_type == "provider"


# How handlers ask for the caller: an explicit dependency (Litestar 3 drops inference).
CurrentUser = NamedDependency[Principal]


def revoked_family_key(topology: TopologyDep, family_id: str) -> str:
    """Set when a login session (token family) is revoked; access tokens carry ``fam``."""
    return topology.key("revoked-family", family_id)


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def provide_principal(
    request: Request[Any, Any, Any],
    tokens: Tokens,
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized()
    return await authenticate(token, tokens, db, redis, topology)


async def authenticate(
    token: str, tokens: TokenService, db: AIOEngine, redis: Redis, topology: Topology
) -> Principal:
    """An access token → its principal; :class:`Unauthorized` with the reason otherwise.
    Shared by HTTP requests and WebSocket sessions."""
    try:
        claims = tokens.decode(token, "access")
    except InvalidToken as exc:
        raise Unauthorized("invalid or expired access token") from exc
    # Logout and refresh-token reuse revoke the session's family; its access tokens die
    # with it at once instead of living out their 15 minutes.
    if claims.family_id and await redis.exists(revoked_family_key(topology, claims.family_id)):
        raise Unauthorized("session revoked")
    user = await db.find_one(User, User.id == claims.subject)
    if user is None:
        raise Unauthorized("account no longer exists")
    return Principal(user, claims)


# Role rules as plain functions, so the signal path (another domain) asks the same question.
def can_manage_channel(principal: Principal, channel: Channel) -> bool:
    """Edit, delete, delegate, see subscribers: the owner or an admin, never a delegate."""
    return principal.is_admin or channel.owner_id == principal.id


def can_signal_channel(principal: Principal, channel: Channel) -> bool:
    """Send signals: the owner, a delegated trader, or an admin."""
    return can_manage_channel(principal, channel) or principal.id in channel.delegates


def require_channel_manager(principal: Principal, channel: Channel) -> None:
    if not can_manage_channel(principal, channel):
        raise Forbidden("only the channel's owner may do this")
