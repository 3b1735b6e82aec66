"""The ledger's writer of the users' recent trades (the fast store, apps.core.recent_trades).

:meth:`apps.ledger.book.Book.record` writes them before MongoDB, so a trade is in the
history as soon as its batch is read, however far MongoDB lags.

Guarantees:

- idempotent: writing the same executions again leaves the same entries, so JetStream's
  redeliveries change nothing; the book passes only the executions it now holds, in
  order, so a field holds what the book holds;
- a settlement never replaces its placement (nor the other way round): each has its
  field;
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

from redis.asyncio import Redis

from apps.core.messages import Execution
from apps.core.recent_trades import encode_entry, field_of, recent_key, recent_of_user
from apps.core.topology import Topology

KEEP = 500
TTL_SECONDS = 4 * 24 * 3600
PER_CALL = 256

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


class RecentTrades:
    """Writes the users' recent trades; :meth:`of_user` reads back what it wrote."""

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
        """The user's recent executions (apps.core.recent_trades.recent_of_user)."""
        return await recent_of_user(self.redis, self.topology, user_id)
