"""Where a broker worker gets a subscriber's broker credentials from.

Orders carry only ``broker_account_id``: secrets never travel through NATS (anyone who
can read a stream could read them). A worker asks a :class:`CredentialStore` for the
account when it is about to trade. The Redis-backed store below reads a sealed record
that the API's projection (and `copier sync-redis`) writes: the credentials exactly as
MongoDB holds them, AES-GCM sealed under ``CREDENTIALS_KEY`` and bound to the account.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol, cast

import msgspec
from redis.asyncio import Redis

from apps.brokers.base import BrokerAccount
from apps.core.credentials import (
    BrokerCredentials,
    CredentialsCipher,
    CredentialsError,
    WorkerAccountRecord,
    pack_account_record,
    unpack_account_record,
)
from apps.core.topology import Topology

log = logging.getLogger("brokers.credentials")


class CredentialStore(Protocol):
    """The port the runner depends on; ``None`` means no such account (or not ours)."""

    async def account_for(self, broker_account_id: str) -> BrokerAccount | None: ...

    async def accounts_for(
        self, broker_account_ids: Iterable[str]
    ) -> dict[str, BrokerAccount | CredentialsUnreadable | None]:
        """Several accounts at once (one round trip for the misses); an unreadable record
        is returned as its error, so one bad account never fails the others."""
        ...

    def forget(self, broker_account_id: str) -> None:
        """Drop what is known of the account: the broker refused its credentials, and the
        next order must read the ones a re-link stores, not the refused ones again."""
        ...


class CredentialsUnreadable(Exception):
    """The record exists but cannot be opened (wrong key, tampered, malformed)."""


def sealed_record(
    cipher: CredentialsCipher,
    broker_account_id: str,
    *,
    kind: str,
    token: str = "",
    login: str = "",
    password: str = "",
    currency: str = "USD",
    balance_type: str = "",
) -> bytes:
    """The packed record for an account, as the API's projection writes it."""
    credentials = BrokerCredentials(
        token=token or None, login=login or None, password=password or None
    )
    sealed = cipher.seal(broker_account_id, kind, credentials)
    return pack_account_record(
        WorkerAccountRecord(
            kind=kind,
            ciphertext=sealed.ciphertext,
            nonce=sealed.nonce,
            key_id=sealed.key_id,
            login=login,
            currency=currency,
            balance_type=balance_type,
        )
    )


def open_record(
    cipher: CredentialsCipher, broker_account_id: str, packed: bytes
) -> tuple[str, BrokerAccount]:
    """``(kind, account)`` from a packed record; :class:`CredentialsUnreadable` otherwise."""
    try:
        record = unpack_account_record(packed)
        credentials = cipher.open(broker_account_id, record.kind, record.sealed)
    except (msgspec.DecodeError, msgspec.ValidationError, CredentialsError) as exc:
        raise CredentialsUnreadable(f"broker account {broker_account_id}: {exc}") from exc
    if not credentials.token and not (credentials.login and credentials.password):
        raise CredentialsUnreadable(f"broker account {broker_account_id} has no credentials")
    account = BrokerAccount(
        token=credentials.token or "",
        login=credentials.login or record.login,
        password=credentials.password or "",
        currency=record.currency,
        balance_type=record.balance_type,
    )
    return record.kind, account


class RedisCredentialStore:
    """Sealed records in Redis, opened once and kept for ``ttl`` seconds in this process.

    The cache keeps the hot path (thousands of orders per signal over the same accounts)
    off Redis and off AES; the TTL bounds how long a rotated token is used, and an
    account whose credentials the broker refused is dropped at once (:meth:`forget`), so
    the order after a re-link reads the new ones.
    Misses are not cached: an account added a moment ago must work on the next order.
    """

    def __init__(
        self,
        redis: Redis,
        topology: Topology,
        cipher: CredentialsCipher,
        *,
        kind: str,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.topology = topology
        self.kind = kind
        self.ttl = ttl
        self.clock = clock
        self._cipher = cipher
        self._cache: dict[str, tuple[float, BrokerAccount]] = {}

    def redis_key(self, broker_account_id: str) -> str:
        return self.topology.broker_account_key(broker_account_id)

    async def account_for(self, broker_account_id: str) -> BrokerAccount | None:
        cached = self._cache.get(broker_account_id)
        now = self.clock()
        if cached is not None and cached[0] > now:
            return cached[1]
        packed = cast(bytes | None, await self.redis.get(self.redis_key(broker_account_id)))
        return self._opened(broker_account_id, packed, now)

    async def accounts_for(
        self, broker_account_ids: Iterable[str]
    ) -> dict[str, BrokerAccount | CredentialsUnreadable | None]:
        now = self.clock()
        found: dict[str, BrokerAccount | CredentialsUnreadable | None] = {}
        missing: list[str] = []
        for account_id in broker_account_ids:
            if account_id in found:
                continue
            cached = self._cache.get(account_id)
            if cached is not None and cached[0] > now:
                found[account_id] = cached[1]
            else:
                found[account_id] = None
                missing.append(account_id)
        if missing:
            records = cast(
                list[bytes | None], await self.redis.mget([self.redis_key(a) for a in missing])
            )
            for account_id, packed in zip(missing, records, strict=True):
                try:
                    found[account_id] = self._opened(account_id, packed, now)
                except CredentialsUnreadable as exc:
                    found[account_id] = exc
        return found

    def forget(self, broker_account_id: str) -> None:
        self._cache.pop(broker_account_id, None)

    def _opened(
        self, broker_account_id: str, packed: bytes | None, now: float
    ) -> BrokerAccount | None:
        if packed is None:
            self._cache.pop(broker_account_id, None)
            return None
        kind, account = open_record(self._cipher, broker_account_id, packed)
        if kind != self.kind:
            # An order routed to the wrong broker kind must not send this token elsewhere.
            log.warning(
                "broker account %s is a %s account, not %s", broker_account_id, kind, self.kind
            )
            return None
        self._cache[broker_account_id] = (now + self.ttl, account)
        return account

    async def put(
        self,
        broker_account_id: str,
        *,
        token: str = "",
        login: str = "",
        password: str = "",
        currency: str = "USD",
        balance_type: str = "",
    ) -> None:
        """Store an account of this store's kind (the writer side, for tools and tests)."""
        record = sealed_record(
            self._cipher,
            broker_account_id,
            kind=self.kind,
            token=token,
            login=login,
            password=password,
            currency=currency,
            balance_type=balance_type,
        )
        await self.redis.set(self.redis_key(broker_account_id), record)
        self._cache.pop(broker_account_id, None)
