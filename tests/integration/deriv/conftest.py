"""The Deriv adapter's tests: the simulator comes from tests/fixtures/deriv_sim.py (a plugin
loaded by tests/conftest.py); its helpers are re-exported here for the test modules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from apps.brokers.deriv.adapter import DerivAdapter
from tests.fixtures.deriv_sim import TIME_SCALE, SimHandle, make_order

__all__ = ["TIME_SCALE", "SimHandle", "make_order"]


@pytest.fixture
async def adapter(sim: SimHandle) -> AsyncIterator[DerivAdapter]:
    adapter = DerivAdapter(sim.url, reply_timeout=3.0, reconcile_grace=0.1)
    yield adapter
    await adapter.close()
