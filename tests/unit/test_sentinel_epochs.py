"""The Valkey primary is the one the Sentinels with the newest configuration epoch name
(apps.core.redis.newest_master): a Sentinel still naming the old primary after a failover,
or an old primary restarted as one, is not followed."""

from __future__ import annotations

from typing import Any

from apps.core.redis import newest_master


def _state(port: int, epoch: int, **flags: bool) -> dict[str, Any]:
    return {
        "ip": "127.0.0.1",
        "port": port,
        "config-epoch": epoch,
        "is_master": True,
        "is_sdown": False,
        "is_odown": False,
        **flags,
    }


def test_the_newest_epoch_wins_over_a_sentinel_that_missed_the_failover() -> None:
    assert newest_master([_state(7001, 0), _state(7002, 1), _state(7002, 1)]) == (
        "127.0.0.1",
        7002,
    )
    assert newest_master([_state(7002, 1), _state(7001, 0)]) == ("127.0.0.1", 7002)


def test_a_primary_seen_down_is_not_named() -> None:
    assert newest_master([_state(7001, 3, is_sdown=True), _state(7002, 2)]) == (
        "127.0.0.1",
        7002,
    )
    assert newest_master([_state(7001, 0, is_odown=True)]) is None
    assert newest_master([]) is None
