"""Requests authenticate from a Redis cache of the user's role, never a stale one for long:
a deleted account or a changed role counts from the next request (through the
invalidation hooks), and a change made behind the code's back within the cache's TTL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import msgspec
import pytest

from apps.api.auth import principals
from apps.api.auth.principals import (
    Authenticator,
    UserFacts,
    user_changed,
    user_deleted,
)
from apps.api.auth.tokens import token_service_from_settings
from apps.api.errors import Unauthorized
from apps.api.models import User as UserDocument
from apps.api.refresh import RefreshAhead
from apps.core.settings import Settings
from tests.fixtures.live_api import Api, User
from tests.fixtures.waiting import wait_for
from tests.integration.accounts.conftest import Stores

SIGNAL = {"asset": "EURUSD", "direction": "CALL", "expiry_seconds": 60, "stake": "10"}


async def _status(api: Api, who: User, method: str, path: str, **kw: object) -> int:
    response = await api.client.request(method, path, headers=who.headers, **kw)  # type: ignore[arg-type]
    return int(response.status_code)


async def _user(stores: Stores, actor: User) -> UserDocument:
    user = await stores.db.find_one(UserDocument, UserDocument.id == actor.id)
    assert user is not None
    return user


async def test_a_deleted_account_is_refused_from_the_next_request(api: Api, stores: Stores) -> None:
    owner = await api.user("provider", "gone")
    channel = await api.channel(owner)
    path = f"/api/v1/channels/{channel}/signals"
    assert await _status(api, owner, "POST", path, json=SIGNAL) == 202

    await stores.db.delete(await _user(stores, owner))
    await user_deleted(stores.redis, stores.topology, owner.id)

    response = await api.client.post(path, json=SIGNAL, headers=owner.headers)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "account no longer exists"
    assert await _status(api, owner, "GET", "/api/v1/me/channels") == 401
    assert await _status(api, owner, "GET", "/api/v1/me") == 401


async def test_a_changed_role_counts_from_the_next_request(api: Api, stores: Stores) -> None:
    provider = await api.user("provider", "demoted")
    admin = await api.admin()
    owner = await api.user("provider", "owner")
    channel = await api.channel(owner)
    path = f"/api/v1/channels/{channel}/signals"
    assert await _status(api, admin, "POST", path, json=SIGNAL) == 202

    # The admin loses the role: no more signals to other people's channels.
    user = await _user(stores, admin)
    user.is_admin = False
    await stores.db.save(user)
    await user_changed(stores.redis, stores.topology, user)
    assert await _status(api, admin, "POST", path, json=SIGNAL) == 403

    # A provider turned subscriber may not open channels any more.
    await api.channel(provider)
    user = await _user(stores, provider)
    user.account_type = "subscriber"
    await stores.db.save(user)
    await user_changed(stores.redis, stores.topology, user)
    body = {"name": "Beta", "description": "", "plan": {"price": "5", "period_days": 30}}
    assert await _status(api, provider, "POST", "/api/v1/channels", json=body) == 403


async def test_a_change_behind_the_codes_back_is_seen_within_the_ttl(
    api: Api, monkeypatch: pytest.MonkeyPatch, stores: Stores
) -> None:
    owner = await api.user("provider", "manual")
    key = stores.topology.user_facts_key(owner.id)
    assert await _status(api, owner, "GET", "/api/v1/me/channels") == 200
    assert 0 < await stores.redis.ttl(key) <= principals.USER_FACTS_TTL_SECONDS == 30

    # The same with a 3 s TTL, so the test need not wait 30 s (and a busy machine still
    # asks twice within it): an operator deletes the account in MongoDB by hand, without
    # the hook.
    await stores.redis.delete(key)
    monkeypatch.setattr(principals, "USER_FACTS_TTL_SECONDS", 3)
    assert await _status(api, owner, "GET", "/api/v1/me/channels") == 200
    await stores.db.delete(await _user(stores, owner))
    assert await _status(api, owner, "GET", "/api/v1/me/channels") == 200  # cached, ≤ 3 s

    async def refused() -> bool:
        return await _status(api, owner, "GET", "/api/v1/me/channels") == 401

    await wait_for(refused, what="the deletion seen once the entry expired", every=0.2)


async def test_a_reader_that_saw_the_old_account_cannot_cache_it_after_a_deletion(
    api: Api, accounts_settings: Settings, stores: Stores
) -> None:
    """The race a delete-based invalidation loses: a request misses the cache and reads
    MongoDB, the account is deleted (hook called), then the request fills the cache with
    what it read. Here the document is even still in MongoDB: the tombstone wins."""
    victim = await api.user("provider", "race")
    authenticator = Authenticator(
        token_service_from_settings(accounts_settings), stores.db, stores.redis, stores.topology
    )
    claims = authenticator.claims(victim.access_token)
    await stores.redis.delete(stores.topology.user_facts_key(victim.id))
    await user_deleted(stores.redis, stores.topology, victim.id)
    with pytest.raises(Unauthorized, match="account no longer exists"):
        await authenticator.admit(claims, [None, None])  # the reader saw a miss before
    with pytest.raises(Unauthorized, match="account no longer exists"):
        await authenticator.authenticate(victim.access_token)


async def _until_cached(
    stores: Stores, key: str, predicate: Callable[[UserFacts | None], bool]
) -> UserFacts | None:
    async def cached() -> tuple[UserFacts | None] | None:
        raw = await stores.redis.get(key)
        facts = None if raw is None else msgspec.msgpack.decode(raw, type=UserFacts | None)
        return (facts,) if predicate(facts) else None  # a tuple: true even for a miss

    (facts,) = await wait_for(cached, what=f"{key} to hold what was expected")
    return facts


async def test_an_old_entry_is_used_and_read_again_behind_the_request(
    api: Api, accounts_settings: Settings, stores: Stores
) -> None:
    """A cached entry past two thirds of its TTL answers the request (which must not wait
    for MongoDB: under a large fan-out a read takes hundreds of ms) and is replaced in
    the background by what MongoDB says now, with a fresh TTL."""
    owner = await api.user("provider", "aging")
    key = stores.topology.user_facts_key(owner.id)
    authenticator = Authenticator(
        token_service_from_settings(accounts_settings), stores.db, stores.redis, stores.topology
    )
    old = UserFacts(id=owner.id, account_type="provider", read_at=time.time() - 21)
    await stores.redis.set(key, msgspec.msgpack.encode(old), ex=9)
    # Demoted by hand in MongoDB, past the hooks.
    user = await _user(stores, owner)
    user.account_type = "subscriber"
    await stores.db.save(user)

    principal = await authenticator.authenticate(owner.access_token)
    assert principal.may_own_channels  # what the cache said: no MongoDB read on the way
    fresh = await _until_cached(
        stores, key, lambda f: f is not None and f.account_type == "subscriber"
    )
    assert fresh is not None and fresh.read_at > old.read_at
    assert await stores.redis.ttl(key) > 9
    assert not (await authenticator.authenticate(owner.access_token)).may_own_channels

    # A fresh entry is left alone.
    user.account_type = "provider"
    await stores.db.save(user)
    await authenticator.authenticate(owner.access_token)
    await asyncio.sleep(0.3)
    assert not (await authenticator.authenticate(owner.access_token)).may_own_channels

    # An account deleted by hand: the refresh leaves its tombstone.
    await stores.redis.set(key, msgspec.msgpack.encode(old), ex=9)
    await stores.db.delete(user)
    await authenticator.authenticate(owner.access_token)
    await _until_cached(stores, key, lambda f: f is None)
    with pytest.raises(Unauthorized, match="account no longer exists"):
        await authenticator.authenticate(owner.access_token)


async def test_a_refresh_never_overwrites_a_write_through(api: Api, stores: Stores) -> None:
    """The refresh read MongoDB before a role change that was written through: the
    write-through is fresher and stays."""
    owner = await api.user("provider", "raced")
    key = stores.topology.user_facts_key(owner.id)
    assert await _status(api, owner, "GET", "/api/v1/me/channels") == 200
    seen = await stores.redis.get(key)
    assert seen is not None

    user = await _user(stores, owner)
    user.is_admin = True
    await stores.db.save(user)
    await user_changed(stores.redis, stores.topology, user)

    async def what_the_refresh_read() -> bytes:
        return seen

    refreshes = RefreshAhead(stores.redis)
    assert not await refreshes.refresh(key, seen, what_the_refresh_read, 30)
    facts = msgspec.msgpack.decode(await stores.redis.get(key), type=UserFacts)
    assert facts.is_admin
