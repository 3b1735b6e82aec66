"""Sortable, time-ordered identifiers (ULID layout: 48-bit ms timestamp + 80 random bits)."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(now_ms: int | None = None) -> str:
    """A 26-character ULID; lexical order follows creation time (ms resolution)."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    return _encode(ms, 10) + _encode(rand, 16)


def id_timestamp_ms(identifier: str) -> int:
    """The creation time (ms since epoch) stored in an id made by :func:`new_id`."""
    value = 0
    for ch in identifier[:10]:
        value = value * 32 + _ALPHABET.index(ch)
    return value
