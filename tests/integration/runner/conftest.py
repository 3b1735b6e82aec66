"""Fixtures of the broker worker tests; the harness lives in tests/fixtures/copier_harness.py
(importable by name, unlike this conftest)."""

from tests.fixtures.copier_harness import copier, redis

__all__ = ["copier", "redis"]
