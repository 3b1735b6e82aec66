"""The fast store of each user's recent trades, in Redis: what the trade history reads first.

One hash per user (``recent:<user_id>``): field ``<order_id>`` holds the order's newest
execution the books hold in any state but settled, field ``<order_id>|s`` its settlement
(executions as msgpack arrays). The API merges the two into one trade
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

_WRITE = r"""
-- KEYS: the users' hashes. ARGV: ttl, keep, and the entries in one argument, each
-- "<key index (1-based)> <field length> <entry length>\n<field><entry>": one argument,
-- not three per execution, because packing arguments costs the client more than the
-- script costs.
local ttl, keep = tonumber(ARGV[1]), tonumber(ARGV[2])
local blob = ARGV[3]
local pos = 1
while pos <= #blob do
  local nl = string.find(blob, '\n', pos, true)
  local k, fl, el = string.match(string.sub(blob, pos, nl - 1), '^(%d+) (%d+) (%d+)$')
  fl, el = tonumber(fl), tonumber(el)
  redis.call('HSET', KEYS[tonumber(k)], string.sub(blob, nl + 1, nl + fl),
    string.sub(blob, nl + fl + 1, nl + fl + el))
  pos = nl + fl + el + 1
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

# An entry is the execution's fields as a msgpack array, in Execution's field order
# (fields are only ever appended, with defaults): without the names it is less than half
# the bytes, and the bytes are most of what writing a fan-out's trades costs.
_FIELDS = Execution.__struct_fields__
_encoder = msgspec.msgpack.Encoder(decimal_format="string")
_decoder = msgspec.msgpack.Decoder(list[Any])


def encode_entry(execution: Execution) -> bytes:
    return _encoder.encode(msgspec.structs.astuple(execution))


def decode_entry(entry: bytes | str) -> Execution | None:
    """The stored execution; ``None`` for an entry this version cannot read (MongoDB has
    the trade)."""
    try:
        values = _decoder.decode(entry.encode() if isinstance(entry, str) else entry)
        if len(values) > len(_FIELDS):
            return None  # written by a newer version: its trade is read from MongoDB
        return msgspec.convert(dict(zip(_FIELDS, values, strict=False)), Execution)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def recent_key(topology: Topology, user_id: str) -> str:
    return topology.key("recent", user_id)


def field_of(execution: Execution) -> str:
    settled = execution.state is ExecutionState.SETTLED
    return execution.order_id + SETTLED_SUFFIX if settled else execution.order_id


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
        parts: list[bytes] = []
        for e in executions:
            if not e.user_id:
                continue
            key = recent_key(self.topology, e.user_id)
            field, entry = field_of(e).encode(), encode_entry(e)
            at = index.setdefault(key, len(index) + 1)
            parts += [b"%d %d %d\n" % (at, len(field), len(entry)), field, entry]
        return list(index), [self.ttl, self.keep, b"".join(parts)]

    async def of_user(self, user_id: str) -> list[Execution]:
        """The user's recent executions, oldest order first, each order's placement before
        its settlement (at most about two per kept order)."""
        raw = await self.redis.hgetall(recent_key(self.topology, user_id))
        found = (decode_entry(entry) for _, entry in sorted(raw.items()))
        return [e for e in found if e is not None]
