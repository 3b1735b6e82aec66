"""Ended sessions reach open sockets at once: a logout (of one device or every device)
is announced on core NATS, and every API instance re-checks the sockets of that user.

The announcement is only a trigger: a socket's re-check reads the revoked token families
from Redis (``revoked-family:<fam>``), the truth every instance shares, and ends only the
sessions whose family was revoked (session_ended). A lost announcement costs promptness,
never correctness: the periodic re-check (apps/api/signals/ws.py) still closes the
socket. Core NATS, not JetStream: nobody needs the history of a logout.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from apps.core.topology import Topology

log = logging.getLogger("api.auth.ended")

Nudge = Callable[[], None]


class EndedSessions:
    """Announce a user's ended sessions, and nudge this instance's sockets of that user."""

    def __init__(self, nc: NATS, topology: Topology) -> None:
        self.nc = nc
        self.topology = topology
        self._listeners: dict[str, set[Nudge]] = defaultdict(set)
        self._sub: Subscription | None = None

    def subject(self, user_id: str) -> str:
        return self.topology.subject("sessions", "ended", user_id)

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(self.subject("*"), cb=self._on_ended)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def announce(self, user_id: str) -> None:
        """Tell every API instance that sessions of ``user_id`` ended; never raises (the
        logout itself already happened, and the periodic re-check is the fallback)."""
        try:
            await self.nc.publish(self.subject(user_id), b"")
        except Exception:
            log.warning("could not announce an ended session", exc_info=True)

    def listen(self, user_id: str, nudge: Nudge) -> Callable[[], None]:
        """Call ``nudge`` whenever sessions of ``user_id`` end; returns the function that
        stops listening."""
        self._listeners[user_id].add(nudge)

        def unlisten() -> None:
            listeners = self._listeners.get(user_id)
            if listeners is not None:
                listeners.discard(nudge)
                if not listeners:
                    self._listeners.pop(user_id, None)

        return unlisten

    async def _on_ended(self, msg: Msg) -> None:
        user_id = msg.subject.rsplit(".", 1)[-1]
        for nudge in list(self._listeners.get(user_id, ())):
            nudge()
