"""The IQ Option verifier's plain words that need no broker: waits and the kinds it takes."""

from __future__ import annotations

import pytest

from apps.api.brokers.verification import (
    BrokerRejected,
    DefaultVerifier,
    DerivVerifier,
    IQOptionVerifier,
    UnsupportedBroker,
    _wait_text,
)
from apps.core.credentials import BrokerCredentials


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0, "in 1 second"),
        (1.5, "in 2 seconds"),
        (45, "in 45 seconds"),
        (119.5, "in 2 minutes"),
        (1894, "in 32 minutes"),
        (7200, "in 2 hours"),
        (86400, "in 24 hours"),
    ],
)
def test_a_wait_is_said_in_the_unit_people_use(seconds: float, said: str) -> None:
    assert _wait_text(seconds) == said


async def test_kinds_and_balances_the_verifiers_do_not_take_are_refused_before_any_call() -> None:
    # Nothing listens on port 9: a call would be BrokerUnavailable, not these.
    iq = IQOptionVerifier("http://127.0.0.1:9/api/v2/login", "ws://127.0.0.1:9/echo/websocket")
    default = DefaultVerifier(DerivVerifier("ws://127.0.0.1:9/websockets/v3"), iq)
    with pytest.raises(UnsupportedBroker):
        await default.verify("binance", BrokerCredentials(token="t"))
    with pytest.raises(UnsupportedBroker):
        await iq.verify("deriv", BrokerCredentials(token="t"))
    with pytest.raises(BrokerRejected, match="'practice' or 'real'"):
        await iq.verify("iqoption", BrokerCredentials(token="a" * 32), balance_type="demo")
    with pytest.raises(BrokerRejected, match="e-mail and a password, or an ssid"):
        await default.verify("iqoption", BrokerCredentials(login="a@b.c"))
