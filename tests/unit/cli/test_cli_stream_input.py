"""`copier signal stream` input lines → WebSocket signal fields (pure)."""

from __future__ import annotations

import pytest

from cli.signals import signal_from_line


def test_a_line_keeps_money_as_text_and_fills_the_channel() -> None:
    signal = signal_from_line(
        '{"asset":"EURUSD","direction":"put","expiry":60,"stake":10.10,"ref":"x"}', "c1"
    )
    assert signal == {
        "asset": "EURUSD",
        "direction": "PUT",
        "expiry_seconds": 60,
        "stake": "10.10",
        "channel_id": "c1",
    }
    assert signal_from_line('{"channel":"c2","stake":3}', "c1") == {
        "channel_id": "c2",
        "stake": "3",
    }


@pytest.mark.parametrize(
    ("line", "problem"),
    [("{", "not JSON"), ("[1]", "JSON object"), ('{"asset":"R_100"}', "no channel")],
)
def test_unusable_lines_say_why(line: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        signal_from_line(line, None)


def test_a_line_may_state_its_expiry_tolerance_by_either_name() -> None:
    short = signal_from_line('{"asset":"EURUSD","tolerance":20}', "c1")
    assert short["expiry_tolerance_seconds"] == 20 and "tolerance" not in short
    long = signal_from_line('{"asset":"EURUSD","expiry_tolerance_seconds":0}', "c1")
    assert long["expiry_tolerance_seconds"] == 0
