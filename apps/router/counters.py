"""Daily risk counters shared by every router instance, checked and taken atomically.

Per subscription and UTC day: the set of signals that took a trade slot (a set, not a
counter, so a redelivered signal is not counted twice) and the day's exposure hash
(:mod:`apps.core.exposure`): realised losses, the stakes reserved by open orders and each
order's reservation. One script call checks a whole slice's subscriptions in a single
round trip, and reserves each order's stake in the same atomic step that checks the room
left, so ``settled losses + open stakes ≤ limit`` holds however many routers take
signals of however many channels at once. A reservation is keyed by its order id: a
redelivered signal finds it (or its release) and takes nothing again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from redis.asyncio import Redis

from apps.core.exposure import (
    EXPOSURE_COUNTER,
    EXPOSURE_TTL_SECONDS,
    LOST,
    OPEN,
    ORDER_PREFIX,
    exposure_day,
    to_minor,
)
from apps.core.messages import Order
from apps.core.routing import RoutingRecord
from apps.core.topology import Topology

COUNTER_TTL_SECONDS = EXPOSURE_TTL_SECONDS

_CHECK_AND_TAKE = f"""
-- KEYS: per order 2 keys: its subscription's trades set, its exposure hash
-- ARGV: signal_id, ttl, then per order: max_trades (-1 = none),
-- loss_limit_minor (-1 = none), stake_minor, order_id
-- Returns per order: verdict (0 ok, 1 trades per day, 2 daily loss), minor units used
-- (lost + open) before this order.
local result = {{}}
local sig, ttl = ARGV[1], tonumber(ARGV[2])
for i = 1, #KEYS, 2 do
  local n = (i + 1) / 2
  local a = 2 + 4 * (n - 1)
  local max_trades = tonumber(ARGV[a + 1])
  local loss_limit = tonumber(ARGV[a + 2])
  local stake = tonumber(ARGV[a + 3])
  local field = '{ORDER_PREFIX}' .. ARGV[a + 4]
  local verdict, used, reserve = 0, 0, false
  if loss_limit >= 0 then
    local v = redis.call('HMGET', KEYS[i + 1], '{LOST}', '{OPEN}', field)
    used = tonumber(v[1] or '0') + tonumber(v[2] or '0')
    -- A reservation already made (or released) for this order: a redelivery, let through.
    if not v[3] then
      if used + stake > loss_limit then verdict = 2 else reserve = true end
    end
  end
  if verdict == 0 and max_trades >= 0 and redis.call('SISMEMBER', KEYS[i], sig) == 0 then
    if redis.call('SCARD', KEYS[i]) >= max_trades then
      verdict = 1
      reserve = false
    else
      redis.call('SADD', KEYS[i], sig)
      redis.call('EXPIRE', KEYS[i], ttl)
    end
  end
  if reserve then
    redis.call('HSET', KEYS[i + 1], field, stake)
    redis.call('HINCRBY', KEYS[i + 1], '{OPEN}', stake)
    redis.call('EXPIRE', KEYS[i + 1], ttl)
  end
  result[2 * n - 1] = verdict
  result[2 * n] = used
end
return result
"""


class Verdict(IntEnum):
    OK = 0
    TRADES_PER_DAY = 1
    DAILY_LOSS = 2


@dataclass(frozen=True, slots=True)
class Checked:
    verdict: Verdict
    # Minor units lost or at risk today before this order (0 without a loss limit).
    used_minor: int


class DailyCounters:
    def __init__(self, redis: Redis, topology: Topology) -> None:
        self.topology = topology
        self._script = redis.register_script(_CHECK_AND_TAKE)

    async def check_and_take(
        self,
        signal_id: str,
        orders: Sequence[tuple[Order, RoutingRecord]],
        now: float,
    ) -> list[Checked]:
        """Check and take each order's trade slot and loss room, in one script call."""
        if not orders:
            return []
        keys: list[str] = []
        args: list[str | int] = [signal_id, COUNTER_TTL_SECONDS]
        for order, record in orders:
            day = exposure_day(order.signal_created_at, now)
            keys += [
                self.topology.risk_key(record.subscription_id, now, "trades"),
                self.topology.risk_key(record.subscription_id, day, EXPOSURE_COUNTER),
            ]
            args += [
                -1 if record.max_trades_per_day is None else record.max_trades_per_day,
                -1 if record.daily_loss_limit is None else to_minor(record.daily_loss_limit),
                to_minor(order.stake),
                order.order_id,
            ]
        raw = await self._script(keys=keys, args=args)
        return [Checked(Verdict(int(raw[k])), int(raw[k + 1])) for k in range(0, len(raw), 2)]
