import os

import pytest

from apps.brokers.credentials import CredentialsUnreadable, open_record, sealed_record
from apps.core.credentials import CredentialsCipher, unpack_account_record


def cipher() -> CredentialsCipher:
    return CredentialsCipher({"k1": os.urandom(32)}, "k1")


def test_a_worker_record_opens_only_for_its_account_kind_and_key() -> None:
    mine = cipher()
    packed = sealed_record(mine, "acc-1", kind="deriv", token="secret", login="CR1", currency="USD")
    assert b"secret" not in packed
    kind, account = open_record(mine, "acc-1", packed)
    assert (kind, account.token, account.login) == ("deriv", "secret", "CR1")
    assert "secret" not in repr(account)
    with pytest.raises(CredentialsUnreadable):  # copied onto another account's record
        open_record(mine, "acc-2", packed)
    with pytest.raises(CredentialsUnreadable):  # another deployment's key
        open_record(cipher(), "acc-1", packed)
    with pytest.raises(CredentialsUnreadable):
        open_record(mine, "acc-1", b"\x00garbage")
    assert unpack_account_record(packed).key_id == "k1"
