"""The books: every order's final state, per-signal counts and per-channel statistics.

Executions arrive at least once (JetStream redelivers), so every change is applied
through one Redis script that records each order's state: a repeated execution changes
no count. Counts live in Redis (exact, cheap, read by the API's live feedback) the moment
a batch is read; MongoDB — the source of truth for per-order documents, and for signal
and channel statistics once Redis has let them go — is brought up to date after that
(:meth:`Book.record` then :meth:`Book.persist`), so a slow MongoDB delays no progress bar.
Per-order documents are written in unordered bulk upserts, never one round trip per order
(the embedded MongoDB stand-in costs milliseconds per operation). An execution that is
what the book already holds is written again on redelivery: the ledger may have stopped
between the two stores.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pymongo import UpdateOne
from redis.asyncio import Redis

from apps.core import metrics
from apps.core.messages import (
    Execution,
    ExecutionEvent,
    ExecutionState,
    FanoutStarted,
)
from apps.core.signal_stats import COUNTED_STATES, signal_counts_from
from apps.core.topology import Topology
from apps.core.track_record import Delays, delay_bucket, delays_from_doc
from apps.ledger.recent import RecentTrades
from apps.ledger.risk import RiskKeeper
from apps.ledger.track import TrackKeeper

log = logging.getLogger("ledger.book")

# Signal books are kept in Redis for a week; MongoDB keeps them for good.
SIGNAL_TTL_SECONDS = 7 * 24 * 3600
MONGO_CHUNK = 500
# Executions per call of the book's script. A script holds Valkey for every other client
# (the workers' markers, the API's signal intake) while it runs, so a call takes a bounded
# slice of a fetch: enough to amortise the call, small enough that no signal's accept
# waits behind it for long.
PER_CALL = 128

_APPLY = """
-- KEYS: states, outcomes, signal stats, channel stats
-- ARGV: ttl, then 8 per execution: order_id, state, at_ms, outcome, profit_minor,
-- broker_kind (the signal's hash also counts states per broker kind, "by:<kind>:<state>":
-- an order has one broker, so moving it between states moves it within its kind),
-- latency_ms and its histogram bucket (both '' when unmeasured: the copy delay of a
-- placement, counted once per order into "delay_n", "delay_sum_ms", "delay_max_ms" and
-- "delay:b<bucket>", see apps.core.track_record)
-- Returns {changed, current} (0-based indexes): first-time changes, which move the
-- counts, and every execution that is what the book now holds, to be written to MongoDB.
-- Orders' states and outcomes are read with one HMGET and written with one HSET per hash
-- (at most PER_CALL executions come at once, well within unpack's limit): a redis.call
-- costs a script much more than the command does.
local ttl = tonumber(ARGV[1])
local ids = {{}, {}}  -- order ids whose state (1) / outcome (2) is looked up
for i = 2, #ARGV, 8 do
  local which = ARGV[i + 1] == 'settled' and 2 or 1
  ids[which][#ids[which] + 1] = ARGV[i]
end
local known = {{}, {}}  -- order id -> what the book holds, as of this execution
for which = 1, 2 do
  if #ids[which] > 0 then
    local values = redis.call('HMGET', KEYS[which], unpack(ids[which]))
    for j, oid in ipairs(ids[which]) do known[which][oid] = values[j] end
  end
end
local writes = {{}, {}}
local changed, current, delta, by_kind = {}, {}, {}, {}
local pnl, first, last = 0, nil, nil
local delay_n, delay_sum, delay_max, delay_buckets = 0, 0, nil, {}
for i = 2, #ARGV, 8 do
  local n = (i - 2) / 8
  local oid, st, at, outcome, pm = ARGV[i], ARGV[i+1], tonumber(ARGV[i+2]), ARGV[i+3], ARGV[i+4]
  local kind, latency, bucket = ARGV[i+5], ARGV[i+6], ARGV[i+7]
  if st == 'settled' then
    local prev = known[2][oid]
    if not prev then
      known[2][oid] = outcome
      writes[2][#writes[2] + 1] = oid
      writes[2][#writes[2] + 1] = outcome
      delta[outcome] = (delta[outcome] or 0) + 1
      pnl = pnl + tonumber(pm)
      changed[#changed + 1] = n
      current[#current + 1] = n
    elseif prev == outcome then
      current[#current + 1] = n
    end
  else
    local old = known[1][oid]
    -- First state wins, except that "placed" (the broker sold the contract) overrides
    -- whatever was said before: the books must match the broker's.
    if (not old) or (st == 'placed' and old ~= 'placed') then
      known[1][oid] = st
      writes[1][#writes[1] + 1] = oid
      writes[1][#writes[1] + 1] = st
      if old then delta[old] = (delta[old] or 0) - 1 end
      delta[st] = (delta[st] or 0) + 1
      if kind ~= '' then
        if old then
          local f = 'by:' .. kind .. ':' .. old
          by_kind[f] = (by_kind[f] or 0) - 1
        end
        local f = 'by:' .. kind .. ':' .. st
        by_kind[f] = (by_kind[f] or 0) + 1
      end
      if st == 'placed' then
        if (not first) or at < first then first = at end
        if (not last) or at > last then last = at end
        if latency ~= '' then
          local ms = tonumber(latency)
          delay_n = delay_n + 1
          delay_sum = delay_sum + ms
          if (not delay_max) or ms > delay_max then delay_max = ms end
          local f = 'delay:b' .. bucket
          delay_buckets[f] = (delay_buckets[f] or 0) + 1
        end
      end
      changed[#changed + 1] = n
      current[#current + 1] = n
    elseif old == st then
      current[#current + 1] = n
    end
  end
end
-- An order changed twice here is written twice; HSET keeps the last, as the book does.
for which = 1, 2 do
  if #writes[which] > 0 then redis.call('HSET', KEYS[which], unpack(writes[which])) end
end
-- One increment per state for the whole batch, not one per execution.
for state, d in pairs(delta) do
  if d ~= 0 then
    redis.call('HINCRBY', KEYS[3], state, d)
    redis.call('HINCRBY', KEYS[4], state, d)
  end
end
for f, d in pairs(by_kind) do
  if d ~= 0 then redis.call('HINCRBY', KEYS[3], f, d) end
end
if pnl ~= 0 then
  redis.call('HINCRBY', KEYS[3], 'pnl_minor', pnl)
  redis.call('HINCRBY', KEYS[4], 'pnl_minor', pnl)
end
if delay_n > 0 then
  redis.call('HINCRBY', KEYS[3], 'delay_n', delay_n)
  redis.call('HINCRBYFLOAT', KEYS[3], 'delay_sum_ms', delay_sum)
  for f, d in pairs(delay_buckets) do redis.call('HINCRBY', KEYS[3], f, d) end
  local held = tonumber(redis.call('HGET', KEYS[3], 'delay_max_ms'))
  if (not held) or delay_max > held then redis.call('HSET', KEYS[3], 'delay_max_ms', delay_max) end
end
if first then
  local held = tonumber(redis.call('HGET', KEYS[3], 'first_placed_ms'))
  if (not held) or first < held then redis.call('HSET', KEYS[3], 'first_placed_ms', first) end
  held = tonumber(redis.call('HGET', KEYS[3], 'last_placed_ms'))
  if (not held) or last > held then redis.call('HSET', KEYS[3], 'last_placed_ms', last) end
end
for k = 1, 3 do redis.call('EXPIRE', KEYS[k], ttl) end
return {changed, current}
"""

_FANOUT = """
-- KEYS: signal stats, channel stats
-- ARGV: ttl, shard, shards, total of this shard, created_ms, channel_id
if redis.call('HSETNX', KEYS[1], 'shard:' .. ARGV[2], ARGV[4]) == 1 then
  if redis.call('HSETNX', KEYS[1], 'shards', ARGV[3]) == 1 then
    redis.call('HSET', KEYS[1], 'created_ms', ARGV[5], 'channel_id', ARGV[6])
    redis.call('HINCRBY', KEYS[2], 'signals', 1)
  end
  redis.call('HINCRBY', KEYS[1], 'total', ARGV[4])
  redis.call('HINCRBY', KEYS[1], 'shards_seen', 1)
  redis.call('HINCRBY', KEYS[2], 'orders', ARGV[4])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


def to_minor(amount: Decimal | None) -> int:
    """Profit in hundredths; every supported currency has two decimals here."""
    return 0 if amount is None else int((amount * 100).to_integral_value())


# copier_valkey_script_seconds of the book's script, bound once (one observe per call).
_APPLY_SECONDS = metrics.valkey_script_seconds.labels("ledger_apply")


@dataclass
class Pending:
    """What a recorded batch still owes MongoDB: the executions whose documents are to be
    written (the writes are built when they are made, after the burst: ``persist``)."""

    executions: list[Execution] = field(default_factory=list)
    touched: set[tuple[str, str]] = field(default_factory=set)  # (signal_id, channel_id)

    def __len__(self) -> int:
        return len(self.executions) + len(self.touched)

    def merge(self, other: Pending) -> None:
        self.executions += other.executions
        self.touched |= other.touched


class Book:
    def __init__(self, redis: Redis, mongo_db: Any, topology: Topology) -> None:
        self.redis = redis
        self.orders = mongo_db["orders"]
        self.signal_stats = mongo_db["signal_stats"]
        self.channel_stats = mongo_db["channel_stats"]
        self.topology = topology
        self.track = TrackKeeper(mongo_db)
        self.risk = RiskKeeper(redis, topology, mongo_db)
        self.recent = RecentTrades(redis, topology)
        self._apply = redis.register_script(_APPLY)
        self._fanout = redis.register_script(_FANOUT)

    def keys(self, signal_id: str, channel_id: str) -> list[str]:
        return [
            self.topology.signal_states_key(signal_id),
            self.topology.signal_outcomes_key(signal_id),
            self.topology.signal_stats_key(signal_id),
            self.topology.channel_stats_key(channel_id),
        ]

    async def apply(self, events: Iterable[ExecutionEvent]) -> None:
        """Record ``events`` (idempotent) and bring MongoDB up to date with them."""
        await self.persist(await self.record(events))

    async def record(self, events: Iterable[ExecutionEvent]) -> Pending:
        """The Redis books (counts, outcomes, the subscribers' limits); returns MongoDB's
        share."""
        by_signal: dict[tuple[str, str], list[Execution]] = defaultdict(list)
        pending = Pending()
        for event in events:
            pair = (event.signal_id, event.channel_id)
            pending.touched.add(pair)
            if isinstance(event, FanoutStarted):
                stats, chan = self.keys(*pair)[2:]
                created_ms = int(event.signal_created_at * 1000)
                await self._fanout(
                    keys=[stats, chan],
                    args=[
                        SIGNAL_TTL_SECONDS,
                        event.shard,
                        event.shards,
                        event.total,
                        created_ms,
                        pair[1],
                    ],
                )
            else:
                by_signal[pair].extend(event.executions)
        changes: list[Execution] = []
        for pair, executions in by_signal.items():
            changed, current = await self._record(pair, executions)
            pending.executions.extend(executions[i] for i in current)
            changes.extend(executions[i] for i in changed)
        # The users' recent trades, before MongoDB: the history shows a trade however far
        # MongoDB lags (apps.ledger.recent).
        await self.recent.write(pending.executions)
        # The subscribers' limits (apps.ledger.risk): exposure released or realised,
        # balances brought forward, drawdown pauses.
        await self.risk.apply(changes, (e for group in by_signal.values() for e in group))
        return pending

    async def persist(self, pending: Pending) -> None:
        """Per-order documents and the statistics documents, in bulk."""
        for start in range(0, len(pending.executions), MONGO_CHUNK):
            writes = [order_write(e) for e in pending.executions[start : start + MONGO_CHUNK]]
            await self.orders.bulk_write(writes, ordered=False)
        await self._copy_stats(pending.touched, pending.executions)

    async def _record(
        self, pair: tuple[str, str], executions: Sequence[Execution]
    ) -> tuple[list[int], list[int]]:
        """Apply ``executions`` in order, ``PER_CALL`` per script call; the indexes of
        the first-time changes and of those that are what the book now holds."""
        keys = self.keys(*pair)
        changed: list[int] = []
        current: list[int] = []
        for start in range(0, len(executions), PER_CALL):
            args: list[Any] = [SIGNAL_TTL_SECONDS]
            for e in executions[start : start + PER_CALL]:
                args += [
                    e.order_id,
                    e.state.value,
                    int(e.at * 1000),
                    e.outcome.value if e.outcome else "",
                    to_minor(e.profit),
                    e.broker_kind,
                    *_delay_args(e),
                ]
            with _APPLY_SECONDS.time():
                part_changed, part_current = await self._apply(keys=keys, args=args)
            changed += [start + int(i) for i in part_changed]
            current += [start + int(i) for i in part_current]
        return changed, current

    async def _copy_stats(
        self, touched: set[tuple[str, str]], executions: Sequence[Execution]
    ) -> None:
        channels = {channel for _, channel in touched}
        delays: dict[str, Delays] = {}
        for signal_id, channel_id in touched:
            stats = await self.signal_counts(signal_id)
            delays[signal_id] = delays_from_doc(stats["delays"])
            await self.signal_stats.update_one(
                {"_id": signal_id},
                {"$set": {"channel_id": channel_id, **stats, "updated_at": time.time()}},
                upsert=True,
            )
            log.info(
                "signal %s: executions recorded (%s)",
                signal_id,
                ", ".join(f"{n} {state}" for state, n in stats["counts"].items()),
                extra={"signal_id": signal_id, "channel_id": channel_id},
            )
        for channel_id in channels:
            raw = await self.redis.hgetall(self.topology.channel_stats_key(channel_id))
            values = {_text(k): int(v) for k, v in raw.items() if _text(v).lstrip("-").isdigit()}
            await self.channel_stats.update_one(
                {"_id": channel_id},
                {
                    "$set": {
                        "signals": values.get("signals", 0),
                        "orders": values.get("orders", 0),
                        **{state: values.get(state, 0) for state in COUNTED_STATES},
                        # Orders won and lost; the per-signal figures are in "track".
                        "won": values.get("won", 0),
                        "lost": values.get("lost", 0),
                        "pnl": str(Decimal(values.get("pnl_minor", 0)).scaleb(-2)),
                        "updated_at": time.time(),
                    },
                    # The per-trade win rate is gone: the one win rate is per signal.
                    "$unset": {"win_rate": ""},
                },
                upsert=True,
            )
        # The signals' results and their channels' track records, once the counts are in.
        await self.track.update(dict(touched), delays, executions)

    async def signal_counts(self, signal_id: str) -> dict[str, Any]:
        """Counts per state, the total, outcomes and latency figures of one signal."""
        raw = await self.redis.hgetall(self.topology.signal_stats_key(signal_id))
        return signal_counts_from(raw)


def _delay_args(e: Execution) -> tuple[str, str]:
    """The copy delay of a placement and its histogram bucket ('' when not measured)."""
    if e.state is not ExecutionState.PLACED or e.latency_ms is None:
        return ("", "")
    return (repr(float(e.latency_ms)), str(delay_bucket(e.latency_ms)))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _money(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount)


def _broker_facts(e: Execution) -> dict[str, Any]:
    """What the broker said about the trade (spots, end instant, balance), the fields it
    said: a settlement that does not repeat the entry spot keeps the placement's. The
    balance after the buy and after the settlement are two fields, so a placement
    redelivered after its settlement cannot put an older balance over a newer one."""
    settled = e.state is ExecutionState.SETTLED
    facts = {
        "expiry_at": e.expiry_at,
        "entry_spot": _money(e.entry_spot),
        "exit_spot": _money(e.exit_spot),
        "balance_after" if settled else "balance_after_buy": _money(e.balance_after),
    }
    return {name: value for name, value in facts.items() if value is not None}


def order_write(e: Execution) -> UpdateOne:
    """The order document's update for one execution (an upsert: either may come first)."""
    if e.state is ExecutionState.SETTLED:
        fields: dict[str, Any] = {
            "outcome": e.outcome.value if e.outcome else None,
            "profit": str(e.profit) if e.profit is not None else None,
            "settled_at": e.at,
            **_broker_facts(e),
        }
        return UpdateOne({"_id": e.order_id}, {"$set": fields}, upsert=True)
    fields = {
        # The order's terms, as the subscriber checks them against the broker's statement.
        "asset": e.asset,
        "direction": e.direction.value if e.direction else None,
        "expiry_seconds": e.expiry_seconds,
        "signal_created_at": e.signal_created_at,
        **_broker_facts(e),
        "signal_id": e.signal_id,
        "channel_id": e.channel_id,
        "subscription_id": e.subscription_id,
        "user_id": e.user_id,
        "broker_kind": e.broker_kind,
        "state": e.state.value,
        "reason": e.reason,
        "stake": str(e.stake) if e.stake is not None else None,
        "currency": e.currency,
        "contract_id": e.contract_id,
        "buy_price": str(e.buy_price) if e.buy_price is not None else None,
        "payout": str(e.payout) if e.payout is not None else None,
        "latency_ms": e.latency_ms,
        "at": e.at,
    }
    return UpdateOne({"_id": e.order_id}, {"$set": fields}, upsert=True)
