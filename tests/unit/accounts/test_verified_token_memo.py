"""Verified access tokens are remembered (verifying costs CPU on every request), but never
past their expiry, and never for another token."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from apps.api.auth import principals
from apps.api.auth.principals import Authenticator
from apps.api.auth.tokens import LEEWAY_SECONDS, token_service_from_settings
from apps.api.errors import Unauthorized
from apps.core.settings import Settings
from apps.core.topology import Topology


def _authenticator(tmp_path: Path) -> Authenticator:
    tokens = token_service_from_settings(replace(Settings(), data_dir=tmp_path))
    # Token checks need no store; the stores are never touched here.
    none: Any = None
    return Authenticator(tokens, none, none, Topology())


def test_a_remembered_token_is_refused_once_it_expires(tmp_path: Path) -> None:
    auth = _authenticator(tmp_path)
    ttl = auth.tokens.access_ttl
    # Expired 1 s before the tolerated clock skew runs out: valid now, not in 1.2 s.
    issued = int(time.time()) - ttl - LEEWAY_SECONDS + 1
    token = auth.tokens.issue("u1", "access", family_id="f1", now=issued).token
    assert auth.claims(token).subject == "u1"
    assert auth.claims(token).subject == "u1"  # from memory
    time.sleep(1.2)
    with pytest.raises(Unauthorized, match="invalid or expired"):
        auth.claims(token)


def test_memory_is_bounded_and_keyed_by_the_exact_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(principals, "VERIFIED_TOKENS_MAX", 3)
    auth = _authenticator(tmp_path)
    tokens = [auth.tokens.issue(f"u{i}", "access").token for i in range(5)]
    for token in tokens:
        auth.claims(token)
    assert [auth.claims(t).subject for t in tokens] == [f"u{i}" for i in range(5)]
    assert len(auth._verified) <= 3
    head, payload, signature = tokens[4].split(".")
    forged = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    with pytest.raises(Unauthorized):
        auth.claims(f"{head}.{payload}.{forged}")
    with pytest.raises(Unauthorized):
        auth.claims(auth.tokens.issue("u1", "refresh", family_id="f").token)
