"""Daily risk counters shared by every router instance, checked and taken atomically.

Per subscription and UTC day: the set of signals that took a trade slot (a set, not a
counter, so a redelivered signal is not counted twice) and the realised loss in minor
units (the ledger adds to it when a contract settles lost). One script call checks a
whole fan-out's worth of subscriptions in a single round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from enum import IntEnum

from redis.asyncio import Redis

from apps.core.routing import RoutingRecord
from apps.core.topology import Topology

COUNTER_TTL_SECONDS = 3 * 24 * 3600

_CHECK_AND_TAKE = """
-- KEYS: per subscription 2 keys: trades set, loss key
-- ARGV: signal_id, ttl, then per subscription: max_trades (-1 = none), loss_limit_minor (-1 = none)
local result = {}
local sig, ttl = ARGV[1], tonumber(ARGV[2])
for i = 1, #KEYS, 2 do
  local n = (i + 1) / 2
  local max_trades = tonumber(ARGV[1 + 2 * n])
  local loss_limit = tonumber(ARGV[2 + 2 * n])
  local verdict = 0
  if loss_limit >= 0 then
    local loss = tonumber(redis.call('GET', KEYS[i + 1]) or '0')
    if loss >= loss_limit then verdict = 2 end
  end
  if verdict == 0 and max_trades >= 0 and redis.call('SISMEMBER', KEYS[i], sig) == 0 then
    if redis.call('SCARD', KEYS[i]) >= max_trades then
      verdict = 1
    else
      redis.call('SADD', KEYS[i], sig)
      redis.call('EXPIRE', KEYS[i], ttl)
    end
  end
  result[n] = verdict
end
return result
"""


class Verdict(IntEnum):
    OK = 0
    TRADES_PER_DAY = 1
    DAILY_LOSS = 2


class DailyCounters:
    def __init__(self, redis: Redis, topology: Topology) -> None:
        self.topology = topology
        self._script = redis.register_script(_CHECK_AND_TAKE)

    async def check_and_take(
        self, signal_id: str, records: Sequence[RoutingRecord], now: float
    ) -> list[Verdict]:
        if not records:
            return []
        keys: list[str] = []
        args: list[str | int] = [signal_id, COUNTER_TTL_SECONDS]
        for record in records:
            keys += [
                self.topology.risk_key(record.subscription_id, now, "trades"),
                self.topology.risk_key(record.subscription_id, now, "loss"),
            ]
            args += [
                -1 if record.max_trades_per_day is None else record.max_trades_per_day,
                -1 if record.daily_loss_limit is None else to_minor(record.daily_loss_limit),
            ]
        verdicts = await self._script(keys=keys, args=args)
        return [Verdict(int(v)) for v in verdicts]


def to_minor(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())
