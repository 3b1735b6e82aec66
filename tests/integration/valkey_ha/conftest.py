"""Fixtures of the Valkey-with-Sentinel tests; the set itself lives in valkey_set.py
(importable by name, unlike this conftest)."""

from tests.integration.valkey_ha.valkey_set import valkey_set

__all__ = ["valkey_set"]
