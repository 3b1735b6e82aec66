"""Sealing broker credentials: what the API writes, a worker opens — and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.brokers.credentials import CredentialsUnreadable, open_record, sealed_record
from apps.core import crypto


def test_sealed_token_opens_only_under_its_key_and_account() -> None:
    key = crypto.decode_key(crypto.new_key())
    packed = sealed_record(key, "acc-1", kind="deriv", token="secret", login="CR1", currency="USD")

    kind, account = open_record(key, "acc-1", packed)

    assert kind == "deriv"
    assert (account.token, account.login, account.currency) == ("secret", "CR1", "USD")
    assert b"secret" not in packed
    assert "secret" not in repr(account)
    with pytest.raises(CredentialsUnreadable):  # copied onto another account's record
        open_record(key, "acc-2", packed)
    with pytest.raises(CredentialsUnreadable):  # another deployment's key
        open_record(crypto.decode_key(crypto.new_key()), "acc-1", packed)


def test_a_fresh_nonce_every_time() -> None:
    key = crypto.decode_key(crypto.new_key())
    first, second = crypto.seal(key, b"same"), crypto.seal(key, b"same")
    assert first[0] != second[0] and first[1] != second[1]
    assert crypto.open(key, *first) == b"same"


def test_keys_are_checked_and_the_dev_key_is_kept(tmp_path: Path) -> None:
    with pytest.raises(crypto.CryptoError):
        crypto.decode_key("c2hvcnQ=")  # 5 bytes
    with pytest.raises(crypto.CryptoError):
        crypto.decode_key("not base64!")
    made = crypto.load_or_create_key("", tmp_path)
    assert crypto.load_or_create_key("", tmp_path) == made  # every process gets the same
    configured = crypto.new_key()
    assert crypto.load_or_create_key(configured, tmp_path) == crypto.decode_key(configured)
