"""How every adapter learns whether the broker booked an order whose reply was lost.

No binary-options broker offers a client order id that makes a repeated buy harmless
(concepts.md, "Duplicates"), so before an order in doubt may be bought again its adapter
lists the account's contracts and looks for one with the order's terms. What that takes
is the same for every broker kind and is here; each kind supplies how to list an
account's contracts and what "the same terms" means on its wire:

- :class:`PlacementMemory`: what this process knows for certain: the orders it placed,
  when it sent each buy (a reconciliation looks no further back than that), and which
  listed contract of each account is already some order's, so one contract is never
  handed to two orders;
- :class:`SharedListings`: one listing of an account serves every order of it being
  reconciled at that moment (after a worker crash that is many orders, and a listing per
  order would run into the broker's rate limits);
- :func:`pick_match`: exactly one unclaimed contract with the order's terms is the
  order's; several are undecidable (a contract bought by hand with the same terms must
  never be passed off as the copier's), and a contract is made the order's through the
  claims every worker shares before it is reported;
- :func:`lost_reply_outcome`: what a placement whose reply was lost becomes once the
  broker was asked.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable, Hashable, Mapping

from apps.brokers.base import (
    ContractClaims,
    Found,
    NotFound,
    Placed,
    PlaceOutcome,
    ReconcileResult,
    TransientFailure,
    Uncertain,
    Undecidable,
)

# How far before valid_until a buy for an order can have happened when this process has
# no record of sending it (a worker that died mid-call): signals live a few seconds.
RECONCILE_LOOKBACK_SECONDS = 120.0
# How long a finished listing of an account's contracts may serve other reconciliations.
LISTING_REUSE_SECONDS = 0.5
# Orders (and sends) remembered per process: far more than one fan-out's.
PLACED_MEMORY = 100_000


class PlacementMemory[K: Hashable]:
    """The orders this process placed and sent, and each account's contracts known to be
    an order's, keyed by ``K`` (the broker's account: Deriv's loginid, IQ Option's balance
    id). Bounded: the oldest entries go first."""

    def __init__(self, clock: Callable[[], float], size: int = PLACED_MEMORY) -> None:
        self.clock = clock
        self.size = size
        self._placed: OrderedDict[str, Placed] = OrderedDict()
        self._sent_at: OrderedDict[str, float] = OrderedDict()
        self._owners: defaultdict[K, dict[int, str]] = defaultdict(dict)

    def placed(self, order_id: str) -> Placed | None:
        return self._placed.get(order_id)

    def record(self, key: K, order_id: str, placed: Placed) -> Placed:
        """``placed`` is the order's: its contract belongs to no other order from now on."""
        self._owners[key][int(placed.contract_id)] = order_id
        self._placed[order_id] = placed
        if len(self._placed) > self.size:
            self._placed.popitem(last=False)
        return placed

    def sent(self, order_id: str) -> None:
        """The order's buy is about to leave (the first send counts)."""
        self._sent_at.setdefault(order_id, self.clock())
        if len(self._sent_at) > self.size:
            self._sent_at.popitem(last=False)

    def sent_here(self, order_id: str) -> bool:
        return order_id in self._sent_at

    def since(self, order_id: str, valid_until: float) -> float:
        """The earliest the order's buy can have been booked: its send, when this process
        sent it, else a lookback before the signal's end."""
        return self._sent_at.get(order_id, valid_until - RECONCILE_LOOKBACK_SECONDS)

    def owners(self, key: K) -> dict[int, str]:
        """Contract id → order id of the account's contracts known to be an order's."""
        return self._owners[key]


class SharedListings[K: Hashable, L]:
    """One listing of an account's contracts at a time, joined by every reconciliation
    of that account that it covers."""

    def __init__(self, reuse_seconds: float = LISTING_REUSE_SECONDS) -> None:
        self.reuse_seconds = reuse_seconds
        self._running: dict[K, tuple[float, float, asyncio.Future[L]]] = {}

    async def take(
        self, key: K, since: float, *, joinable: bool, list_now: Callable[[], Awaitable[L]]
    ) -> L:
        """A listing taken no earlier than this call, or one in flight (or finished within
        ``reuse_seconds``) that covers ``since``, when ``joinable``. A buy this process
        sent itself may be newer than a listing already running, and a second attempt
        wants a fresh one: those pass ``joinable=False``."""
        now = time.monotonic()
        shared = self._running.get(key)
        if shared is not None and joinable:
            started, covers_since, running = shared
            fresh = not running.done() or now - started < self.reuse_seconds
            if fresh and covers_since <= since:
                return await asyncio.shield(running)
        future: asyncio.Future[L] = asyncio.get_running_loop().create_future()
        self._running[key] = (now, since, future)
        try:
            listed = await list_now()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: joiners get it through their own await
            self._running.pop(key, None)
            raise
        future.set_result(listed)
        return listed


async def pick_match[T](
    order_id: str,
    candidates: Mapping[int, T],
    owned: Mapping[int, str],
    claims: ContractClaims | None,
    noun: str,
) -> T | Undecidable | None:
    """The one contract among ``candidates`` (listed with the order's terms, by contract
    id) that is this order's, ``None`` if none is, or why it cannot be told.

    Contracts this process (``owned``) or any worker (``claims``) knows to be another
    order's are not candidates; the match is claimed for this order before it is
    returned, so two workers reconciling look-alike orders never share a contract."""
    mine = {cid: c for cid, c in candidates.items() if owned.get(cid, order_id) == order_id}
    if claims is not None and mine:
        owners = await claims.owners([str(cid) for cid in mine])
        mine = {cid: c for cid, c in mine.items() if owners.get(str(cid), order_id) == order_id}
    if len(mine) > 1:
        return Undecidable(reason=f"{len(mine)} unclaimed {noun}s match the order's terms")
    if not mine:
        return None
    contract_id, match = next(iter(mine.items()))
    if claims is not None and not await claims.claim(str(contract_id)):
        return Undecidable(reason=f"another order claimed the matching {noun}")
    return match


def lost_reply_outcome(
    order_id: str, result: ReconcileResult, *, timed_out: bool, noun: str
) -> PlaceOutcome:
    """What a buy whose reply never came becomes once the broker's contracts were listed.

    A listed contract is the order's placement. None listed after the socket closed with
    the buy unanswered: the broker handles a call within its connection, so buying again
    cannot duplicate it (retried at once). None listed after a reply that timed out on an
    open socket: the buy may still be booked, so the order is not bought again (it ends
    ``unknown``), as it is when the listing cannot tell."""
    match result:
        case Found(placed=placed):
            return placed
        case NotFound() if not timed_out:
            return TransientFailure(
                order_id=order_id,
                code="ReplyLost",
                message=f"buy reply lost; no {noun} booked",
                retry_after=0.0,
            )
        case NotFound():
            return Uncertain(
                order_id=order_id,
                message=f"buy reply timed out and no {noun} is listed yet; "
                "it may still be booked, so it is not retried",
            )
        case Undecidable(reason=reason):
            return Uncertain(order_id=order_id, message=reason)
