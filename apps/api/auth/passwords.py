"""Argon2id password hashing, off the event loop.

Parameters follow OWASP's minimum for Argon2id (19 MiB memory, 2 iterations, 1 lane).
A hash takes tens of milliseconds of CPU, so it runs in a worker thread.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher(
    time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)
# Verified against when the account does not exist, so "no such user" and "wrong
# password" take the same time and do not reveal which e-mails are registered.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``; a missing hash costs the same and fails."""
    return await asyncio.to_thread(_verify, stored, password)
