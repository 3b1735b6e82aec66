"""Where a broker worker gets a subscriber's broker credentials from.

Orders carry only ``broker_account_id``: secrets never travel through NATS (anyone who
can read a stream could read them). A worker asks a :class:`CredentialStore` for the
account when it is about to trade. The Redis-backed store below reads a sealed record
that the API (or the MongoDB → Redis rebuild) writes with :func:`sealed_record`; the
token is AES-GCM sealed under ``CREDENTIALS_KEY`` and bound to the account id.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from typing import Protocol, cast

import msgspec
from redis.asyncio import Redis

from apps.brokers.base import BrokerAccount
from apps.core import crypto
from apps.core.topology import Topology

log = logging.getLogger("brokers.credentials")


class CredentialStore(Protocol):
    """The port the runner depends on; ``None`` means no such account (or not ours)."""

    async def account_for(self, broker_account_id: str) -> BrokerAccount | None: ...


class CredentialsUnreadable(Exception):
    """The record exists but cannot be opened (wrong key, tampered, malformed)."""


class SealedAccount(msgspec.Struct, frozen=True, kw_only=True):
    """The record at ``key("broker-account", id)``, msgpack-packed."""

    kind: str
    token_ciphertext_b64: str
    nonce_b64: str
    login: str = ""
    currency: str = "USD"


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(SealedAccount)


def sealed_record(
    key: bytes, broker_account_id: str, *, kind: str, token: str, login: str, currency: str
) -> bytes:
    """The packed record for an account: what the writer side stores in Redis."""
    nonce, ciphertext = crypto.seal(key, token.encode(), broker_account_id.encode())
    return _encoder.encode(
        SealedAccount(
            kind=kind,
            token_ciphertext_b64=base64.b64encode(ciphertext).decode(),
            nonce_b64=base64.b64encode(nonce).decode(),
            login=login,
            currency=currency,
        )
    )


def open_record(key: bytes, broker_account_id: str, packed: bytes) -> tuple[str, BrokerAccount]:
    """``(kind, account)`` from a packed record; :class:`CredentialsUnreadable` otherwise."""
    try:
        record = _decoder.decode(packed)
        token = crypto.open(
            key,
            base64.b64decode(record.nonce_b64),
            base64.b64decode(record.token_ciphertext_b64),
            broker_account_id.encode(),
        )
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise CredentialsUnreadable(f"broker account {broker_account_id}: {exc}") from exc
    account = BrokerAccount(token=token.decode(), login=record.login, currency=record.currency)
    return record.kind, account


class RedisCredentialStore:
    """Sealed records in Redis, opened once and kept for ``ttl`` seconds in this process.

    The cache keeps the hot path (thousands of orders per signal over the same accounts)
    off Redis and off AES; the TTL bounds how long a revoked or rotated token is used.
    Misses are not cached: an account added a moment ago must work on the next order.
    """

    def __init__(
        self,
        redis: Redis,
        topology: Topology,
        key: bytes,
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
        self._key = key
        self._cache: dict[str, tuple[float, BrokerAccount]] = {}

    def redis_key(self, broker_account_id: str) -> str:
        return self.topology.key("broker-account", broker_account_id)

    async def account_for(self, broker_account_id: str) -> BrokerAccount | None:
        cached = self._cache.get(broker_account_id)
        now = self.clock()
        if cached is not None and cached[0] > now:
            return cached[1]
        packed = cast(bytes | None, await self.redis.get(self.redis_key(broker_account_id)))
        if packed is None:
            self._cache.pop(broker_account_id, None)
            return None
        kind, account = open_record(self._key, broker_account_id, packed)
        if kind != self.kind:
            # An order routed to the wrong broker kind must not send this token elsewhere.
            log.warning(
                "broker account %s is a %s account, not %s", broker_account_id, kind, self.kind
            )
            return None
        self._cache[broker_account_id] = (now + self.ttl, account)
        return account

    async def put(
        self, broker_account_id: str, *, token: str, login: str = "", currency: str = "USD"
    ) -> None:
        """Store an account of this store's kind (the writer side, for tools and tests)."""
        record = sealed_record(
            self._key,
            broker_account_id,
            kind=self.kind,
            token=token,
            login=login,
            currency=currency,
        )
        await self.redis.set(self.redis_key(broker_account_id), record)
        self._cache.pop(broker_account_id, None)
