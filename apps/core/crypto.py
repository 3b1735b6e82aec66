"""Secrets at rest: AES-256-GCM sealing shared by whoever writes broker credentials (the API)
and whoever reads them (the broker workers).

One key (32 random bytes, base64 in ``CREDENTIALS_KEY``) seals every credential; each seal
uses a fresh 96-bit random nonce, which is what AES-GCM needs to stay safe (NIST SP 800-38D:
a nonce must never repeat under one key). ``aad`` binds a ciphertext to what it belongs to
(the broker account id), so a sealed token copied onto another account's record does not
open there.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_FILE = "credentials.key"


class CryptoError(ValueError):
    """A key is malformed, or a ciphertext does not open under this key and context."""


def decode_key(key_b64: str) -> bytes:
    """The 32-byte key from its base64 form; anything else is a configuration error."""
    try:
        key = base64.b64decode(key_b64.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CryptoError("the credentials key is not valid base64") from exc
    if len(key) != KEY_BYTES:
        raise CryptoError(f"the credentials key must be {KEY_BYTES} bytes, got {len(key)}")
    return key


def new_key() -> str:
    """A fresh random key, base64 (what ``CREDENTIALS_KEY`` holds)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def load_or_create_key(configured: str, data_dir: Path) -> bytes:
    """The configured key, or (dev only, empty setting) one kept in ``data_dir``.

    Several processes of the embedded stack start at once; the file is created with
    O_EXCL so they all end up with the same key instead of overwriting each other's.
    """
    if configured:
        return decode_key(configured)
    path = data_dir / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return decode_key(path.read_text())
    with os.fdopen(fd, "w") as out:
        out.write(new_key())
    return decode_key(path.read_text())


def seal(key: bytes, plaintext: bytes, aad: bytes = b"") -> tuple[bytes, bytes]:
    """Encrypt and authenticate ``plaintext``; returns ``(nonce, ciphertext)``."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce, AESGCM(key).encrypt(nonce, plaintext, aad or None)


def open(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes = b"") -> bytes:
    """The plaintext of a :func:`seal` result; :class:`CryptoError` when it was tampered
    with, sealed under another key, or sealed for another ``aad``."""
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad or None)
    except (InvalidTag, ValueError) as exc:
        raise CryptoError("the ciphertext does not open under this key") from exc
