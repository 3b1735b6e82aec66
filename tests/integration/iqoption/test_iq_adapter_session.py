"""The IQ Option session keeps its socket: it answers the server's heartbeats (the
simulator, like the broker, closes a socket after three unanswered ones)."""

from __future__ import annotations

import pytest

from apps.brokers.iqoption.adapter import IQOptionAdapter
from apps.brokers.iqoption.simulator import SimConfig
from tests.fixtures.iq_orders import broker_account, iq_adapter
from tests.fixtures.iqoption_sim import TIME_SCALE, IQOptionSim
from tests.fixtures.waiting import wait_for

__all__ = ["iq_adapter"]


@pytest.fixture
def iqoption_sim_config() -> SimConfig:
    return SimConfig(time_scale=TIME_SCALE, heartbeat_seconds=0.1)


async def test_heartbeats_are_answered_and_the_socket_stays_open(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    linked = broker_account(account)
    assert await iq_adapter.connect(linked) is None
    session = iq_adapter.session(linked)

    # Many more heartbeats than the three the server lets go unanswered.
    await wait_for(lambda: session.heartbeats >= 12, what="twelve heartbeats answered")

    assert session.is_open and session.authorized
    assert session.connects == 1
