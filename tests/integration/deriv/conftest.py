"""The Deriv adapter's tests: the simulator comes from tests/fixtures/deriv_sim.py (a plugin
loaded by tests/conftest.py), whose helpers the test modules import from there (a bare
``conftest`` import would pick whichever test folder's conftest pytest loaded first)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from apps.brokers.deriv.adapter import DerivAdapter
from tests.fixtures.deriv_sim import SimHandle


@pytest.fixture
async def adapter(sim: SimHandle) -> AsyncIterator[DerivAdapter]:
    adapter = DerivAdapter(sim.url, reply_timeout=3.0, reconcile_grace=0.1)
    yield adapter
    await adapter.close()
