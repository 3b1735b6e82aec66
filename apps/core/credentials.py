"""Broker credentials sealed at rest with AES-GCM.

The ciphertext is bound to its broker account (id and kind as associated data), so a
ciphertext copied onto another account document fails to open. Each row records the key
id that sealed it, so a new key can be introduced while old rows still open.
"""

from __future__ import annotations

import base64
import binascii
import os

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from apps.core.dev_keys import load_or_create
from apps.core.settings import Settings

NONCE_BYTES = 12


class BrokerCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """Plaintext credentials: only ever in memory, only as long as a call needs them."""

    token: str | None = None
    login: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        # Never let a traceback, log line or debugger print show the secret.
        return "BrokerCredentials(<redacted>)"

    __str__ = __repr__


class SealedCredentials(msgspec.Struct, frozen=True):
    ciphertext: bytes
    nonce: bytes
    key_id: str


class CredentialsError(Exception):
    """Stored credentials cannot be opened (unknown key id, tampered ciphertext)."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(BrokerCredentials)


def _associated_data(account_id: str, kind: str) -> bytes:
    return f"broker-account:{account_id}:{kind}".encode()


class CredentialsCipher:
    def __init__(self, keys: dict[str, bytes], current_key_id: str) -> None:
        for key_id, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"credentials key {key_id!r} must be 32 bytes (AES-256)")
        if current_key_id not in keys:
            raise ValueError(f"no credentials key with id {current_key_id!r}")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._current = current_key_id

    def seal(self, account_id: str, kind: str, credentials: BrokerCredentials) -> SealedCredentials:
        nonce = os.urandom(NONCE_BYTES)  # random 96-bit nonce, fresh for every seal
        ciphertext = self._keys[self._current].encrypt(
            nonce, _encoder.encode(credentials), _associated_data(account_id, kind)
        )
        return SealedCredentials(ciphertext, nonce, self._current)

    def open(self, account_id: str, kind: str, sealed: SealedCredentials) -> BrokerCredentials:
        aead = self._keys.get(sealed.key_id)
        if aead is None:
            raise CredentialsError(f"unknown credentials key id {sealed.key_id!r}")
        try:
            plaintext = aead.decrypt(
                sealed.nonce, sealed.ciphertext, _associated_data(account_id, kind)
            )
        except InvalidTag as exc:
            raise CredentialsError("credentials do not open with their key") from exc
        return _decoder.decode(plaintext)


def _new_key_b64() -> bytes:
    return base64.b64encode(os.urandom(32))


def cipher_from_settings(settings: Settings) -> CredentialsCipher:
    """Key from settings (base64 of 32 bytes); empty → a dev key kept in data_dir (0600)."""
    encoded = settings.credentials_key.encode() or load_or_create(
        settings.data_dir / "credentials.key", _new_key_b64, "credentials key"
    )
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error as exc:
        raise ValueError("credentials_key must be base64 of 32 bytes") from exc
    return CredentialsCipher({settings.credentials_key_id: key}, settings.credentials_key_id)


class WorkerAccountRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What a broker worker needs to trade on an account, kept in Redis at
    ``key("broker-account", id)``: the credentials still sealed exactly as MongoDB holds
    them (the worker opens them with the same key), never plaintext."""

    kind: str
    ciphertext: bytes
    nonce: bytes
    key_id: str
    login: str = ""
    currency: str = "USD"
    # Which of the account's balances to trade, for brokers with several (IQ Option
    # "practice" or "real"); empty for Deriv.
    balance_type: str = ""

    @property
    def sealed(self) -> SealedCredentials:
        return SealedCredentials(self.ciphertext, self.nonce, self.key_id)


_record_encoder = msgspec.msgpack.Encoder()
_record_decoder = msgspec.msgpack.Decoder(WorkerAccountRecord)


def pack_account_record(record: WorkerAccountRecord) -> bytes:
    return _record_encoder.encode(record)


def unpack_account_record(raw: bytes) -> WorkerAccountRecord:
    return _record_decoder.decode(raw)
