"""/api/v1/auth/* and /api/v1/me."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from apps.api.auth import service
from apps.api.auth.ratelimit import limit_auth_attempt
from apps.api.auth.schemas import (
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    TokenResponse,
    UserView,
)
from apps.api.dependencies import (
    CurrentUser,
    Db,
    Ended,
    RedisClient,
    SettingsDep,
    Tokens,
    TopologyDep,
)
from apps.api.errors import Unauthorized
from apps.api.models import User
from apps.api.openapi import errors

REFRESH_COOKIE = "copier_refresh"
# The cookie only travels to the auth endpoints, never with ordinary API calls.
REFRESH_COOKIE_PATH = "/api/v1/auth"
# Sent by both logouts: the browser drops its refresh cookie (a 204 has no body to carry).
EXPIRED_REFRESH_COOKIE = Cookie(
    key=REFRESH_COOKIE,
    value="",
    path=REFRESH_COOKIE_PATH,
    max_age=0,
    expires=0,
    httponly=True,
    secure=True,
    samesite="strict",
)


def user_view(user: User) -> UserView:
    return UserView(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        account_type=user.account_type,
        is_admin=user.is_admin,
        created_at=user.created_at,
    )


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _session_response(session: service.Session, settings: SettingsDep) -> Response[TokenResponse]:
    body = TokenResponse(
        access_token=session.access_token,
        token_type="Bearer",  # noqa: S106 - the OAuth token type, not a secret
        expires_in=session.expires_in,
        refresh_token=session.refresh_token,
    )
    cookie = Cookie(
        key=REFRESH_COOKIE,
        value=session.refresh_token,
        path=REFRESH_COOKIE_PATH,
        max_age=settings.refresh_token_ttl_seconds,
        httponly=True,
        secure=True,
        samesite="strict",
    )
    return Response(body, cookies=[cookie])


@post("/auth/register", status_code=HTTP_201_CREATED, responses=errors(409, 429))
async def register(
    request: Request[Any, Any, Any],
    data: JSONBody[RegisterRequest],
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
    settings: SettingsDep,
) -> UserView:
    await limit_auth_attempt(
        redis,
        topology,
        "register",
        _client(request),
        data.email,
        per_ip=settings.auth_attempts_per_minute_per_ip,
        per_account=settings.auth_attempts_per_minute_per_account,
    )
    user = await service.create_user(
        db,
        email=data.email,
        password=data.password,
        display_name=data.display_name,
        account_type=data.account_type,
    )
    return user_view(user)


@post("/auth/login", status_code=200, responses=errors(401, 429))
async def login(
    request: Request[Any, Any, Any],
    data: JSONBody[LoginRequest],
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
    settings: SettingsDep,
    tokens: Tokens,
) -> Response[TokenResponse]:
    await limit_auth_attempt(
        redis,
        topology,
        "login",
        _client(request),
        data.email,
        per_ip=settings.auth_attempts_per_minute_per_ip,
        per_account=settings.auth_attempts_per_minute_per_account,
    )
    session = await service.login(db, tokens, data.email, data.password)
    return _session_response(session, settings)


@post("/auth/refresh", status_code=200, responses=errors(401))
async def refresh(
    request: Request[Any, Any, Any],
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
    settings: SettingsDep,
    tokens: Tokens,
    data: JSONBody[RefreshRequest | None] = None,
) -> Response[TokenResponse]:
    token = (data.refresh_token if data else None) or request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise Unauthorized("refresh token required")
    session = await service.rotate(db, redis, topology, tokens, token)
    return _session_response(session, settings)


@post("/auth/logout", status_code=HTTP_204_NO_CONTENT, response_cookies=[EXPIRED_REFRESH_COOKIE])
async def logout(
    request: Request[Any, Any, Any],
    principal: CurrentUser,
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
    tokens: Tokens,
    ended: Ended,
    data: JSONBody[RefreshRequest | None] = None,
) -> None:
    token = (data.refresh_token if data else None) or request.cookies.get(REFRESH_COOKIE)
    await service.logout(
        db, redis, topology, tokens, principal.id, principal.token.family_id, token
    )
    await ended.announce(principal.id)


@post(
    "/auth/logout-all",
    status_code=HTTP_204_NO_CONTENT,
    response_cookies=[EXPIRED_REFRESH_COOKIE],
)
async def logout_all(
    principal: CurrentUser,
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
    tokens: Tokens,
    ended: Ended,
) -> None:
    """Sign out on every device: every session of this account ends now, and its open
    sockets, on every API instance, are closed with session_ended."""
    await service.logout_everywhere(db, redis, topology, tokens, principal.id)
    await ended.announce(principal.id)


@get("/me")
async def me(principal: CurrentUser, db: Db) -> UserView:
    # The principal carries only what permissions need; the profile comes from MongoDB.
    user = await db.find_one(User, User.id == principal.id)
    if user is None:
        raise Unauthorized("account no longer exists")
    return user_view(user)


auth_router = Router(
    path="/api/v1", route_handlers=[register, login, refresh, logout, logout_all, me], tags=["auth"]
)
