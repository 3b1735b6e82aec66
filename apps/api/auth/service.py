"""Accounts and sessions: register, log in, rotate refresh tokens, log out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from odmantic import AIOEngine
from odmantic.exceptions import DuplicateKeyError
from redis.asyncio import Redis

from apps.api.auth.passwords import hash_password, verify_password
from apps.api.auth.tokens import InvalidToken, TokenService
from apps.api.errors import Conflict, Unauthorized
from apps.api.models import AccountType, RefreshToken, User
from apps.core.topology import Topology


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    access_token: str
    refresh_token: str
    expires_in: int


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def create_user(
    db: AIOEngine,
    *,
    email: str,
    password: str,
    display_name: str,
    account_type: AccountType,
    is_admin: bool = False,
) -> User:
    """Create an account; admins only come from here via the CLI/seed, never the public API."""
    email = normalize_email(email)
    if await db.find_one(User, User.email == email) is not None:
        raise Conflict("an account with this e-mail already exists", code="email_taken")
    user = User(
        email=email,
        password_hash=await hash_password(password),
        display_name=display_name.strip(),
        account_type=account_type,
        is_admin=is_admin,
        created_at=datetime.now(UTC),
    )
    try:
        return await db.save(user)
    except DuplicateKeyError as exc:  # two registrations raced past the check above
        raise Conflict("an account with this e-mail already exists", code="email_taken") from exc


async def _start_family(db: AIOEngine, tokens: TokenService, user: User, family: str) -> Session:
    refresh = tokens.issue(user.id, "refresh", family_id=family)
    access = tokens.issue(user.id, "access", family_id=family)
    await db.save(
        RefreshToken(
            id=refresh.claims.token_id,
            family_id=family,
            user_id=user.id,
            issued_at=datetime.fromtimestamp(refresh.claims.issued_at, UTC),
            expires_at=datetime.fromtimestamp(refresh.claims.expires_at, UTC),
        )
    )
    return Session(user, access.token, refresh.token, tokens.access_ttl)


async def login(db: AIOEngine, tokens: TokenService, email: str, password: str) -> Session:
    user = await db.find_one(User, User.email == normalize_email(email))
    # Verify even without a user (against a dummy hash): equal timing, no account probing.
    ok = await verify_password(user.password_hash if user else None, password)
    if user is None or not ok:
        raise Unauthorized("wrong e-mail or password", code="invalid_credentials")
    return await _start_family(db, tokens, user, uuid.uuid4().hex)


async def revoke_family(
    db: AIOEngine, redis: Redis, topology: Topology, tokens: TokenService, family_id: str
) -> None:
    now = datetime.now(UTC)
    collection = db.get_collection(RefreshToken)
    await collection.update_many(
        {"family_id": family_id, "revoked_at": None}, {"$set": {"revoked_at": now}}
    )
    # Access tokens of the family are checked against this key until they expire anyway.
    await redis.set(topology.revoked_family_key(family_id), b"1", ex=tokens.access_ttl + 60)


async def rotate(
    db: AIOEngine, redis: Redis, topology: Topology, tokens: TokenService, refresh_token: str
) -> Session:
    """Exchange a refresh token for a new pair; a second use revokes the whole family."""
    try:
        claims = tokens.decode(refresh_token, "refresh")
    except InvalidToken as exc:
        raise Unauthorized("invalid or expired refresh token") from exc
    assert claims.family_id is not None  # decode() guarantees it for refresh tokens
    collection = db.get_collection(RefreshToken)
    # Conditional update = compare-and-set: of two concurrent refreshes only one wins.
    result = await collection.update_one(
        {"_id": claims.token_id, "rotated_at": None, "revoked_at": None},
        {"$set": {"rotated_at": datetime.now(UTC)}},
    )
    if result.modified_count != 1:
        stored = await db.find_one(RefreshToken, RefreshToken.id == claims.token_id)
        if stored is not None and stored.revoked_at is None:
            # Already rotated: someone replays an old token (stolen?), end the session.
            await revoke_family(db, redis, topology, tokens, claims.family_id)
            raise Unauthorized("refresh token reuse detected; session revoked")
        raise Unauthorized("refresh token revoked")
    user = await db.find_one(User, User.id == claims.subject)
    if user is None:
        raise Unauthorized("account no longer exists")
    return await _start_family(db, tokens, user, claims.family_id)


async def logout(
    db: AIOEngine,
    redis: Redis,
    topology: Topology,
    tokens: TokenService,
    user_id: str,
    access_family: str | None,
    refresh_token: str | None,
) -> None:
    families = {access_family} if access_family else set()
    if refresh_token:
        try:
            claims = tokens.decode(refresh_token, "refresh")
        except InvalidToken:
            claims = None
        if claims is not None and claims.subject == user_id and claims.family_id:
            families.add(claims.family_id)
    for family in families:
        await revoke_family(db, redis, topology, tokens, family)


async def logout_everywhere(
    db: AIOEngine, redis: Redis, topology: Topology, tokens: TokenService, user_id: str
) -> int:
    """End every session of the user (all devices); returns how many were open."""
    families = {
        t.family_id
        for t in await db.find(
            RefreshToken,
            (RefreshToken.user_id == user_id) & (RefreshToken.revoked_at == None),  # noqa: E711
        )
    }
    for family in families:
        await revoke_family(db, redis, topology, tokens, family)
    return len(families)
