"""copier_ledger_lag_seconds: the age of the oldest execution MongoDB does not have yet."""

from __future__ import annotations

import asyncio

from apps.ledger.book import Pending
from apps.ledger.main import MongoWriter


class SlowBook:
    """A book whose MongoDB write waits until the test lets it go."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def persist(self, pending: Pending) -> None:
        await self.release.wait()


async def test_lag_grows_while_executions_wait_for_mongodb_and_is_zero_once_written() -> None:
    book = SlowBook()
    writer = MongoWriter(book, at_most=0.0)  # type: ignore[arg-type]
    assert writer.lag() == 0.0
    running = asyncio.create_task(writer.run())
    await writer.put(Pending(), [], 1)
    await asyncio.sleep(0.05)
    assert writer.lag() >= 0.04  # being written, not yet in MongoDB
    book.release.set()
    await writer.close()
    await running
    assert writer.lag() == 0.0
