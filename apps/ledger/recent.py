"""The fast store of each user's recent trades, in Redis: what the trade history reads first.

One hash per user (``recent:<user_id>``): field ``<order_id>`` holds the order's newest
execution the books hold in any state but settled, field ``<order_id>|s`` its settlement
(msgpack-encoded executions). The API merges the two into one trade
(apps.api.trades.schemas). The ledger writes it in :meth:`apps.ledger.book.Book.record`,
before MongoDB, so a trade is in the history as soon as its batch is read, however far
MongoDB lags.

Guarantees:

- idempotent: writing the same executions again leaves the same entries, so JetStream's
  redeliveries change nothing; the book passes only the executions it now holds, in
  order, so a field holds what the book holds;
- a settlement never replaces its placement (nor the other way round): each has its
  field, so the placement's instant and copy delay stay next to the outcome;
- bounded: a user's hash keeps their newest :data:`KEEP` orders (order ids sort by their
  signal's time, apps.core.ids), trimmed once it holds a tenth more fields than two per
  kept order, and expires :data:`TTL_SECONDS` after the user's last trade; MongoDB keeps
  everything.

Every batch is one pipeline of script calls, :data:`PER_CALL` executions each, so writing
10,000 trades costs a few round trips, not one per trade.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis

from apps.core.messages import Execution, ExecutionState
from apps.core.topology import Topology

KEEP = 500
TTL_SECONDS = 4 * 24 * 3600
PER_CALL = 256
SETTLED_SUFFIX = "|s"  # '|' sorts after every character of an order id

_WRITE = """
-- KEYS: the users' hashes. ARGV: ttl, keep, then 3 per execution: key index (1-based),
-- field, encoded execution.
local ttl, keep = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 3, #ARGV, 3 do
  redis.call('HSET', KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
end
-- Trimmed with slack, so a user at the bound does not sort their trades on every write.
local most = 2 * keep + math.floor(keep / 5) + 1
for _, key in ipairs(KEYS) do
  if redis.call('HLEN', key) > most then
    local fields = redis.call('HKEYS', key)
    table.sort(fields)
    -- From the newest down, the fields of the newest `keep` orders stay.
    local orders, cut = 0, 0
    local last = nil
    for j = #fields, 1, -1 do
      local oid = string.gsub(fields[j], '|s$', '')
      if oid ~= last then
        orders = orders + 1
        last = oid
      end
      if orders > keep then
        cut = j
        break
      end
    end
    if cut > 0 then
      local drop = {}
      for j = 1, cut do drop[#drop + 1] = fields[j] end
      for j = 1, #drop, 1000 do
        redis.call('HDEL', key, unpack(drop, j, math.min(j + 999, #drop)))
      end
    end
  end
  redis.call('EXPIRE', key, ttl)
end
return 1
"""

_encoder = msgspec.msgpack.Encoder(decimal_format="string")
_decoder = msgspec.msgpack.Decoder(Execution)


def recent_key(topology: Topology, user_id: str) -> str:
    return topology.key("recent", user_id)


def field_of(execution: Execution) -> str:
    settled = execution.state is ExecutionState.SETTLED
    return execution.order_id + SETTLED_SUFFIX if settled else execution.order_id


def _decode(entry: bytes | str) -> Execution | None:
    try:
        return _decoder.decode(entry.encode() if isinstance(entry, str) else entry)
    except msgspec.DecodeError:  # an entry this version cannot read: MongoDB has it
        return None


class RecentTrades:
    """Writes (the ledger) and reads (the API) the users' recent trades."""

    def __init__(
        self, redis: Redis, topology: Topology, *, keep: int = KEEP, ttl: int = TTL_SECONDS
    ) -> None:
        self.redis = redis
        self.topology = topology
        self.keep = keep
        self.ttl = ttl
        self._write = redis.register_script(_WRITE)

    async def write(self, executions: Sequence[Execution]) -> None:
        """Store ``executions`` (those the books now hold), in order; one pipeline."""
        calls = [
            self._call(executions[i : i + PER_CALL]) for i in range(0, len(executions), PER_CALL)
        ]
        calls = [(keys, args) for keys, args in calls if keys]
        if not calls:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                await self._write(keys=keys, args=args, client=pipe)
            await pipe.execute()

    def _call(self, executions: Iterable[Execution]) -> tuple[list[str], list[Any]]:
        index: dict[str, int] = {}
        args: list[Any] = [self.ttl, self.keep]
        for e in executions:
            if not e.user_id:
                continue
            key = recent_key(self.topology, e.user_id)
            at = index.setdefault(key, len(index) + 1)
            args += [at, field_of(e), _encoder.encode(e)]
        return list(index), args

    async def of_user(self, user_id: str) -> list[Execution]:
        """The user's recent executions, oldest order first, each order's placement before
        its settlement (at most about two per kept order)."""
        raw = await self.redis.hgetall(recent_key(self.topology, user_id))
        found = (_decode(entry) for _, entry in sorted(raw.items()))
        return [e for e in found if e is not None]
