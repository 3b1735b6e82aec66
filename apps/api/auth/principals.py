"""Who is calling, without a MongoDB read: verified token claims → :class:`Principal`.

The access token proves identity (signature, issuer, audience, expiry). What can change
under a still-valid token, and so is looked up on every request, is:

- **the session was revoked** (logout, refresh-token reuse): the token family's
  ``revoked-family:<fam>`` key in Redis;
- **the account was deleted, or its role changed** (``is_admin``, ``account_type``): the
  user's facts, cached in Redis under ``user-facts:<user_id>`` (msgspec, MessagePack).

Both are read in one round trip (``MGET``), together with whatever else the caller needs
in the same breath: signal intake adds the channel's ACL, the WebSocket re-check the
ACLs of the channels it watches. Authentication therefore costs one Redis round trip and
no MongoDB read; MongoDB is asked only when the facts are not cached.

**Staleness bound.**

- A write that goes through :func:`user_changed` or :func:`user_deleted` takes effect on
  the next request, on every API instance (they share Redis). These functions write the
  new facts (or a tombstone) *through* instead of deleting the entry, and a request that
  fills the cache from MongoDB does so with ``SET NX``: a reader that fetched the old
  document just before the write cannot put it back afterwards. Every code path that
  changes or deletes a user must call one of them.
- A write that bypasses them (an operator editing MongoDB by hand), or two writers of the
  same user racing each other, is seen within :data:`USER_FACTS_TTL_SECONDS` (30 s).
  An entry older than two thirds of that is still used, and read again from MongoDB in
  the background (:mod:`apps.api.refresh`): a known user's request never waits for
  MongoDB, which under a large fan-out answers in hundreds of ms instead of a few.

There is deliberately no in-process layer: the revocation check is a Redis round trip
on every request anyway, so the facts ride along at no extra latency and stay shared by
every instance; a per-process copy would add its own staleness window to save a
MessagePack decode. Only the facts the permission rules and signal intake need are cached
(id, role, display name — a signal records who sent it), not the e-mail or password hash;
``/me`` reads the document itself.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
from odmantic import AIOEngine
from redis.asyncio import Redis

from apps.api.auth.tokens import LEEWAY_SECONDS, InvalidToken, TokenClaims, TokenService
from apps.api.errors import Unauthorized
from apps.api.models import AccountType, User
from apps.api.refresh import RefreshAhead, is_due
from apps.core.topology import Topology

USER_FACTS_TTL_SECONDS = 30
# Access tokens whose signature was verified, remembered until they expire (see claims()).
VERIFIED_TOKENS_MAX = 4096


class UserFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the permission rules ask about an account; cached in Redis."""

    id: str
    account_type: AccountType
    is_admin: bool = False
    read_at: float = 0.0  # when these facts were read from MongoDB (epoch s)
    # The name a signal's audit record carries (``sent_by``); "" in an entry cached before
    # it was kept, which lives at most USER_FACTS_TTL_SECONDS.
    display_name: str = ""

    @classmethod
    def of(cls, user: User) -> UserFacts:
        return cls(
            id=user.id,
            account_type=user.account_type,
            is_admin=user.is_admin,
            read_at=time.time(),
            display_name=user.display_name,
        )


@dataclass(frozen=True, slots=True)
class Principal:
    facts: UserFacts
    token: TokenClaims

    @property
    def id(self) -> str:
        return self.facts.id

    @property
    def is_admin(self) -> bool:
        return self.facts.is_admin

    @property
    def may_own_channels(self) -> bool:
        return self.facts.is_admin or self.facts.account_type == "provider"


# None is the tombstone of a deleted (or never existing) account.
_facts_encoder = msgspec.msgpack.Encoder()
_facts_decoder = msgspec.msgpack.Decoder(UserFacts | None)
_GONE = _facts_encoder.encode(None)


async def user_changed(redis: Redis, topology: Topology, user: User) -> None:
    """Call after saving a change to a user's role (``is_admin``, ``account_type``)."""
    await redis.set(
        topology.user_facts_key(user.id),
        _facts_encoder.encode(UserFacts.of(user)),
        ex=USER_FACTS_TTL_SECONDS,
    )


async def user_deleted(redis: Redis, topology: Topology, user_id: str) -> None:
    """Call after deleting a user: their tokens stop working at the next request."""
    await redis.set(topology.user_facts_key(user_id), _GONE, ex=USER_FACTS_TTL_SECONDS)


class Authenticator:
    """Access token → :class:`Principal`; shared by HTTP requests and WebSocket sessions.

    :meth:`authenticate` does it all in one round trip; callers that read more keys in
    that round trip use :meth:`lookup_keys` and :meth:`admit` around their own ``MGET``.
    """

    def __init__(
        self, tokens: TokenService, db: AIOEngine, redis: Redis, topology: Topology
    ) -> None:
        self.tokens = tokens
        self.db = db
        self.redis = redis
        self.topology = topology
        self._verified: dict[str, TokenClaims] = {}
        self.refreshes = RefreshAhead(redis)

    def claims(self, token: str | None) -> TokenClaims:
        """Verify the token itself (no I/O); :class:`Unauthorized` if it is no good.

        A client sends the same access token with every request for its 15 minutes, and
        verifying it (Ed25519 plus PyJWT's per-character base64 checks) costs ~0.2 ms of
        CPU each time. The verdict on a given token never changes (the key ring is fixed
        for the life of the process), only its expiry comes closer: verified tokens are
        remembered, a bounded number of them, and their expiry checked on each use."""
        if token is None:
            raise Unauthorized()
        claims = self._verified.get(token)
        if claims is not None:
            if time.time() < claims.expires_at + LEEWAY_SECONDS:
                return claims
            del self._verified[token]
        try:
            claims = self.tokens.decode(token, "access")
        except InvalidToken as exc:
            raise Unauthorized("invalid or expired access token") from exc
        if len(self._verified) >= VERIFIED_TOKENS_MAX:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = claims
        return claims

    async def authenticate(self, token: str | None) -> Principal:
        claims = self.claims(token)
        found: list[bytes | None] = await self.redis.mget(self.lookup_keys(claims))  # type: ignore[assignment]
        return await self.admit(claims, found)

    def lookup_keys(self, claims: TokenClaims) -> list[str]:
        """The Redis keys :meth:`admit` needs, in the order it expects their values."""
        keys = [self.topology.user_facts_key(claims.subject)]
        if claims.family_id:
            keys.append(self.topology.revoked_family_key(claims.family_id))
        return keys

    async def admit(self, claims: TokenClaims, found: Sequence[bytes | None]) -> Principal:
        """The principal of verified ``claims``, given the values of :meth:`lookup_keys`."""
        # Logout and refresh-token reuse revoke the session's family; its access tokens die
        # with it at once instead of living out their 15 minutes.
        if claims.family_id and found[1] is not None:
            raise Unauthorized("session revoked")
        seen = found[0]
        hit, facts = _cached(seen)
        if not hit or seen is None:
            facts = await self._fill(claims.subject)
        elif facts is not None and is_due(facts.read_at, USER_FACTS_TTL_SECONDS):
            user_id = claims.subject
            self.refreshes.refresh(
                self.topology.user_facts_key(user_id),
                seen,
                lambda: self._read(user_id),
                USER_FACTS_TTL_SECONDS,
            )
        if facts is None:
            raise Unauthorized("account no longer exists")
        return Principal(facts, claims)

    async def _load(self, user_id: str) -> UserFacts | None:
        user = await self.db.find_one(User, User.id == user_id)
        return None if user is None else UserFacts.of(user)

    async def _read(self, user_id: str) -> bytes:
        """The user's cache entry, read from MongoDB now (a tombstone if gone)."""
        return _facts_encoder.encode(await self._load(user_id))

    async def _fill(self, user_id: str) -> UserFacts | None:
        facts = await self._load(user_id)
        # NX: a writer's fresher value (user_changed/user_deleted) wins over ours.
        earlier: bytes | None = await self.redis.set(  # type: ignore[assignment]
            self.topology.user_facts_key(user_id),
            _facts_encoder.encode(facts),
            nx=True,
            get=True,
            ex=USER_FACTS_TTL_SECONDS,
        )
        hit, cached = _cached(earlier)
        return cached if hit else facts


def _cached(raw: bytes | None) -> tuple[bool, UserFacts | None]:
    """(found, facts) of a cache entry; facts None is a deleted account's tombstone."""
    if raw is None:
        return False, None
    try:
        return True, _facts_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):  # another version's entry
        return False, None
