"""The ledger's side of the subscribers' limits: exposure released, balances and peaks kept,
drawdown pauses made durable.

:meth:`RiskKeeper.apply` is driven by the book script's first-time changes, so a
redelivered execution changes nothing here either; and every step is idempotent on its own
as well (each order's reservation records what became of it):

- **exposure** (:mod:`apps.core.exposure`): an order that ends without an open contract
  (rejected, expired, failed) releases its reservation; a settled contract releases it,
  and a lost one adds its loss to the day's realised losses (for every subscription, so a
  limit set later in the day counts the losses before it); a placement after a release
  (the broker sold the contract after all) takes the reservation again. ``unknown`` keeps
  the reservation: the broker may hold an open contract, and only the reconciliation that
  follows says which — counting it at risk until then never lets the limit be overrun.
  Each order's day is its signal's (:func:`apps.core.exposure.exposure_day`), the day the
  router reserved in.
- **balances**: where a worker reports the broker's balance after an order
  (``balance_after``) it is taken as is; otherwise the balance written at verification is
  brought forward by the stake a placement paid and the payout a settlement returned. The
  peak (``peak:<account>`` in the same hash) is the highest balance seen.
- **drawdown**: a subscription whose balance fell its ``max_drawdown_percent`` below the
  peak — seen here, or refused for it by the router — is paused with a reason starting
  "maximum drawdown reached" (:func:`apps.ledger.pauses.pause_subscriptions`); only its
  subscriber resumes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis

from apps.core.exposure import (
    DRAWDOWN_PAUSE_PREFIX,
    EXPOSURE_COUNTER,
    EXPOSURE_TTL_SECONDS,
    LOST,
    OPEN,
    ORDER_PREFIX,
    PEAK_PREFIX,
    RELEASED,
    SETTLED,
    drawdown_reason,
    exposure_day,
    from_minor,
    to_minor,
)
from apps.core.messages import Execution, ExecutionState, Outcome
from apps.core.routing import RoutingRecord, unpack_record
from apps.core.topology import Topology
from apps.ledger.pauses import pause_subscriptions

log = logging.getLogger("ledger.risk")

_RELEASING = {ExecutionState.REJECTED, ExecutionState.EXPIRED, ExecutionState.FAILED}

_EXPOSURE = f"""
-- KEYS: per change its order's exposure hash
-- ARGV: ttl, then 3 per change: action (release | placed | settle), order_id, minor
-- (placed: the stake; settle: the loss, 0 when won)
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  local action, minor = ARGV[3 * i - 1], tonumber(ARGV[3 * i + 1])
  local field = '{ORDER_PREFIX}' .. ARGV[3 * i]
  local key = KEYS[i]
  local held = redis.call('HGET', key, field)
  local reserved = held and held ~= '{RELEASED}' and held ~= '{SETTLED}'
  if action == 'release' then
    if reserved then
      redis.call('HINCRBY', key, '{OPEN}', -tonumber(held))
      redis.call('HSET', key, field, '{RELEASED}')
    end
  elseif action == 'placed' then
    if held == '{RELEASED}' then
      redis.call('HINCRBY', key, '{OPEN}', minor)
      redis.call('HSET', key, field, minor)
    end
  elseif held ~= '{SETTLED}' and (held or minor > 0) then
    if reserved then redis.call('HINCRBY', key, '{OPEN}', -tonumber(held)) end
    if minor > 0 then redis.call('HINCRBY', key, '{LOST}', minor) end
    redis.call('HSET', key, field, '{SETTLED}')
    redis.call('EXPIRE', key, ttl)
  end
end
return 1
"""

_BALANCES = f"""
-- KEYS: the balances hash
-- ARGV: 3 per change, in order: account id, mode (d: add minor, a: set to minor), minor
-- Returns per change: the balance and the peak after it, in minor units ('' when the
-- account's balance is unknown: nothing to bring forward).
local out = {{}}
local function minor_of(v) return v and math.floor(tonumber(v) * 100 + 0.5) or nil end
local function text(m) return string.format('%.2f', m / 100) end
for i = 1, #ARGV, 3 do
  local account, mode, minor = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local v = redis.call('HMGET', KEYS[1], account, '{PEAK_PREFIX}' .. account)
  local balance, peak = minor_of(v[1]), minor_of(v[2])
  if mode == 'a' then balance = minor elseif balance then balance = balance + minor end
  if balance then
    if (not peak) or balance > peak then peak = balance end
    redis.call('HSET', KEYS[1], account, text(balance), '{PEAK_PREFIX}' .. account, text(peak))
    out[#out + 1] = balance
    out[#out + 1] = peak
  else
    out[#out + 1] = ''
    out[#out + 1] = ''
  end
end
return out
"""


def exposure_change(e: Execution) -> tuple[str, int] | None:
    """What ``e``, a first-time change, does to its order's reservation: (action, minor)."""
    if e.state in _RELEASING:
        return "release", 0
    if e.state is ExecutionState.PLACED and e.stake is not None:
        return "placed", to_minor(e.stake)
    if e.state is ExecutionState.SETTLED:
        if e.profit is not None:
            return "settle", max(-to_minor(e.profit), 0)
        lost = e.outcome is Outcome.LOST and e.stake is not None
        return "settle", to_minor(e.stake) if lost and e.stake is not None else 0
    return None  # unknown keeps the reservation; pending changes nothing


def balance_change(e: Execution) -> tuple[str, int] | None:
    """What ``e``, a first-time change, does to its account's balance: (mode, minor)."""
    if e.balance_after is not None and e.state in (ExecutionState.PLACED, ExecutionState.SETTLED):
        return "a", to_minor(e.balance_after)
    cost = e.buy_price if e.buy_price is not None else e.stake
    if cost is None:
        return None
    if e.state is ExecutionState.PLACED:
        return "d", -to_minor(cost)
    if e.state is ExecutionState.SETTLED and e.profit is not None:
        return "d", max(to_minor(cost) + to_minor(e.profit), 0)  # the payout returned
    return None


class RiskKeeper:
    def __init__(self, redis: Redis, topology: Topology, mongo_db: Any) -> None:
        self.redis = redis
        self.topology = topology
        self.db = mongo_db
        self._exposure = redis.register_script(_EXPOSURE)
        self._balances = redis.register_script(_BALANCES)

    async def apply(self, changed: Sequence[Execution], seen: Iterable[Execution]) -> None:
        """Apply the first-time changes ``changed``; ``seen`` (every execution read) is
        searched for the router's drawdown refusals, which are made durable whether or not
        they are new (the pause is idempotent, and a crash before it is then repaired)."""
        await self._apply_exposure(changed)
        pauses = await self._apply_balances(changed)
        for e in seen:
            if e.state is ExecutionState.REJECTED and (e.reason or "").startswith(
                DRAWDOWN_PAUSE_PREFIX
            ):
                pauses.setdefault(e.subscription_id, e.reason or DRAWDOWN_PAUSE_PREFIX)
        if pauses:
            paused = await pause_subscriptions(self.db, self.redis, self.topology, pauses)
            if paused:
                log.warning("%d subscriptions paused at their maximum drawdown", paused)

    async def _apply_exposure(self, changed: Sequence[Execution]) -> None:
        keys: list[str] = []
        args: list[str | int] = [EXPOSURE_TTL_SECONDS]
        for e in changed:
            change = exposure_change(e)
            if change is None:
                continue
            day = exposure_day(e.signal_created_at, e.at)
            keys.append(self.topology.risk_key(e.subscription_id, day, EXPOSURE_COUNTER))
            args += [change[0], e.order_id, change[1]]
        for start in range(0, len(keys), 256):
            await self._exposure(
                keys=keys[start : start + 256],
                args=[args[0], *args[1 + 3 * start : 1 + 3 * (start + 256)]],
            )

    async def _apply_balances(self, changed: Sequence[Execution]) -> dict[str, str]:
        """Bring the accounts' balances forward; the drawdown pauses they call for."""
        moves = [(e, c) for e in changed if (c := balance_change(e)) is not None]
        if not moves:
            return {}
        records = await self._records({(e.channel_id, e.subscription_id) for e, _ in moves})
        args: list[str | int] = []
        applied: list[RoutingRecord] = []
        for e, (mode, minor) in moves:
            record = records.get(e.subscription_id)
            if record is None:
                continue  # no longer routed: its account is not known here
            args += [record.broker_account_id, mode, minor]
            applied.append(record)
        if not applied:
            return {}
        out = await self._balances(keys=[self.topology.balances_key()], args=args)
        latest: dict[str, tuple[Decimal, Decimal]] = {}
        for k, record in enumerate(applied):
            balance, peak = out[2 * k], out[2 * k + 1]
            if balance not in (b"", ""):
                latest[record.broker_account_id] = (
                    from_minor(int(balance)),
                    from_minor(int(peak)),
                )
        pauses: dict[str, str] = {}
        for record in {r.subscription_id: r for r in applied}.values():
            known = latest.get(record.broker_account_id)
            if record.max_drawdown_percent is None or known is None or record.paused:
                continue
            reason = drawdown_reason(known[0], known[1], record.max_drawdown_percent)
            if reason is not None:
                pauses[record.subscription_id] = reason
        return pauses

    async def _records(self, pairs: set[tuple[str, str]]) -> dict[str, RoutingRecord]:
        """The routing records of (channel, subscription) ``pairs``, in one round trip."""
        ordered = sorted(pairs)
        async with self.redis.pipeline(transaction=False) as pipe:
            for channel_id, subscription_id in ordered:
                pipe.hget(self.topology.routing_key(channel_id), subscription_id)
            raws: list[bytes | None] = await pipe.execute()
        return {
            subscription_id: unpack_record(raw)
            for (_, subscription_id), raw in zip(ordered, raws, strict=True)
            if raw is not None
        }
