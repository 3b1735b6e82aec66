"""Whether a burst of placements is under way, for work that should wait for its end: the
runner's bookkeeping of answered orders, the Deriv adapter's settlement streams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class Bursts:
    """Whether placements are under way: busy while one runs and for ``settle`` seconds
    after the last one ended (the next chunk of the same fan-out is usually on its way)."""

    def __init__(self, settle: float = 0.3) -> None:
        self.settle = settle
        self._running = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._timer: asyncio.TimerHandle | None = None

    @contextlib.contextmanager
    def placing(self) -> Iterator[None]:
        self._running += 1
        self._quiet.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            yield
        finally:
            self._running -= 1
            if self._running == 0:
                self._timer = asyncio.get_running_loop().call_later(self.settle, self._quiet.set)

    async def quiet(self, timeout: float) -> bool:
        """Wait until no placement has run for ``settle`` seconds, at most ``timeout``."""
        if self._quiet.is_set() or timeout <= 0:
            return self._quiet.is_set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._quiet.wait()
        return self._quiet.is_set()
