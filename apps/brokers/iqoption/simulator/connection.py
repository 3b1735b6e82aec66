"""One IQ Option WebSocket peer of the simulator: its login, heartbeats and subscriptions.

The writing (synchronous, in order) is :class:`apps.brokers.simulation.Peer`'s; this adds
what IQ Option keeps per socket: the user its ssid logged in, the heartbeats it has not
answered yet and its ``portfolio.position-changed`` subscriptions, each an
(instrument type, balance id) filter (a None balance id follows every balance).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apps.brokers.simulation import Peer


@dataclass(eq=False)
class Connection(Peer):
    """One WebSocket peer, with its login, heartbeats and subscriptions."""

    user_id: int | None = None
    ssid_hash: str | None = None
    unanswered: list[int] = field(default_factory=list)  # heartbeatTime of each
    position_filters: set[tuple[str, int | None]] = field(default_factory=set)

    def follows(self, instrument_type: str, balance_id: int) -> bool:
        """Whether this socket subscribed to the position changes of such an option."""
        kind = f"{instrument_type}-option"
        return (kind, balance_id) in self.position_filters or (
            kind,
            None,
        ) in self.position_filters
