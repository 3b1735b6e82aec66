"""The fault switches every broker simulator obeys: ``PUT /admin/faults`` sets them.

They are the misbehaviours the copier must survive with every order placed exactly once:
slow replies, refused buys, a reply lost after the buy is booked, dropped connections, a
closed market and forced outcomes. The switches are broker-neutral; a broker kind decides
where it consults them (its buy handler, its settlement) and what its error looks like.
Counting switches (``error_count``, ``drop_mid_buy``, ``drop_after_messages``) are spent
by the ``take_*`` methods, one use per call that returns true.
"""

from __future__ import annotations

import random
from typing import Any, Literal

import msgspec


class Faults(msgspec.Struct, kw_only=True):
    """Switches that make the simulator misbehave on purpose (PUT /admin/faults)."""

    latency_ms: float = 0.0  # added before every reply
    error_rate: float = 0.0  # share of buys failing with the kind's creation failure
    error_code: str | None = None  # the next ``error_count`` buys fail with this code
    error_count: int = 0
    drop_after_messages: int | None = None  # close the connection on the Nth next message
    drop_mid_buy: int = 0  # the next N buys are booked, then the connection drops unanswered
    market_closed: bool = False
    force_outcome: Literal["won", "lost"] | None = None

    def updated(self, changes: dict[str, Any]) -> Faults:
        """These switches with ``changes`` applied (a PUT changes only what it names)."""
        return msgspec.convert(msgspec.structs.asdict(self) | changes, Faults)

    def take_error(self, rng: random.Random, creation_failure: str) -> str | None:
        """The error code the next buy fails with, if any: a counted ``error_code`` first,
        else ``creation_failure`` for a share ``error_rate`` of buys."""
        if self.error_count > 0 and self.error_code:
            self.error_count -= 1
            return self.error_code
        if self.error_rate > 0 and rng.random() < self.error_rate:
            return creation_failure
        return None

    def take_drop_mid_buy(self) -> bool:
        """Whether the buy just booked loses its reply with the connection."""
        if self.drop_mid_buy > 0:
            self.drop_mid_buy -= 1
            return True
        return False

    def take_message_drop(self) -> bool:
        """Whether the message just received is the one the connection drops on."""
        if self.drop_after_messages is None:
            return False
        self.drop_after_messages -= 1
        if self.drop_after_messages > 0:
            return False
        self.drop_after_messages = None
        return True
