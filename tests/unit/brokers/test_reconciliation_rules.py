"""The broker-independent half of reconciling an order whose buy reply was lost."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

from apps.brokers.base import (
    Found,
    NotFound,
    Placed,
    TransientFailure,
    Uncertain,
    Undecidable,
)
from apps.brokers.reconciliation import (
    PlacementMemory,
    SharedListings,
    lost_reply_outcome,
    pick_match,
)


class Claims:
    """Every worker's claims, as a dict (the runner keeps them in Valkey)."""

    def __init__(self, owners: dict[str, str], order_id: str) -> None:
        self._owners = owners
        self.order_id = order_id

    async def owners(self, contract_ids: Sequence[str]) -> dict[str, str]:
        return {c: self._owners[c] for c in contract_ids if c in self._owners}

    async def claim(self, contract_id: str) -> bool:
        return self._owners.setdefault(contract_id, self.order_id) == self.order_id


def placed(order_id: str, contract_id: str = "7") -> Placed:
    return Placed(
        order_id=order_id,
        contract_id=contract_id,
        buy_price=Decimal("1"),
        payout=Decimal("1.9"),
        purchase_time=1,
        broker_ref="r",
    )


async def test_one_unclaimed_look_alike_is_the_orders_and_is_claimed_for_it() -> None:
    claims = Claims({}, "o1")
    assert await pick_match("o1", {7: "seven"}, {}, claims, "contract") == "seven"
    assert await claims.owners(["7"]) == {"7": "o1"}


async def test_contracts_of_other_orders_are_never_candidates() -> None:
    mine_known_here = {8: "o2"}
    elsewhere = Claims({"9": "o3"}, "o1")
    candidates = {7: "seven", 8: "eight", 9: "nine"}
    assert await pick_match("o1", candidates, mine_known_here, elsewhere, "option") == "seven"


async def test_two_look_alikes_are_undecidable_and_none_is_none() -> None:
    two = await pick_match("o1", {7: "a", 8: "b"}, {}, None, "option")
    assert two == Undecidable(reason="2 unclaimed options match the order's terms")
    assert await pick_match("o1", {}, {}, None, "option") is None


async def test_a_match_another_worker_claimed_first_is_undecidable() -> None:
    class Late(Claims):
        async def claim(self, contract_id: str) -> bool:
            return False

    result = await pick_match("o1", {7: "seven"}, {}, Late({}, "o1"), "contract")
    assert result == Undecidable(reason="another order claimed the matching contract")


def test_a_lost_reply_is_retried_only_when_the_broker_cannot_still_book_it() -> None:
    assert lost_reply_outcome("o1", Found(placed=placed("o1")), timed_out=True, noun="x") == (
        placed("o1")
    )
    closed = lost_reply_outcome("o1", NotFound(), timed_out=False, noun="option")
    assert isinstance(closed, TransientFailure) and closed.code == "ReplyLost"
    assert isinstance(lost_reply_outcome("o1", NotFound(), timed_out=True, noun="o"), Uncertain)
    unsure = lost_reply_outcome("o1", Undecidable(reason="why"), timed_out=False, noun="o")
    assert unsure == Uncertain(order_id="o1", message="why")


def test_memory_knows_placements_sends_and_owners_and_forgets_the_oldest() -> None:
    memory = PlacementMemory[int](clock=lambda: 100.0, size=2)
    assert memory.since("o1", valid_until=130.0) == 10.0  # lookback without a send
    memory.sent("o1")
    assert memory.sent_here("o1") and memory.since("o1", valid_until=130.0) == 100.0
    for n in (1, 2, 3):
        memory.record(5, f"o{n}", placed(f"o{n}", str(n)))
    assert memory.placed("o1") is None and memory.placed("o3") == placed("o3", "3")
    assert memory.owners(5) == {1: "o1", 2: "o2", 3: "o3"}


async def test_a_listing_in_flight_is_joined_and_a_fresh_one_taken_when_not_joinable() -> None:
    listings = SharedListings[str, int]()
    calls = 0
    gate = asyncio.Event()

    async def list_now() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return calls

    first = asyncio.create_task(listings.take("acct", 10.0, joinable=True, list_now=list_now))
    await asyncio.sleep(0)
    joined = asyncio.create_task(listings.take("acct", 20.0, joinable=True, list_now=list_now))
    gate.set()
    assert (await first, await joined) == (1, 1)
    # An older ``since`` than the running listing covers, or a caller that sent a buy
    # itself, gets a listing of its own.
    assert await listings.take("acct", 5.0, joinable=True, list_now=list_now) == 2
    assert await listings.take("acct", 30.0, joinable=False, list_now=list_now) == 3
