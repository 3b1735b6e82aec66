"""Per-order placement markers in Redis: what turns at-least-once delivery into
exactly-once placement (ARCHITECTURE.md, "Guarantees").

``key("order", order_id)`` holds one packed :class:`Marker` (:func:`pack`):

- ``inflight`` — written with ``SET NX`` *before* the broker is called. Its owner renews
  ``lease_until`` while it works and cancels its broker call if it cannot, so a marker
  past its lease belongs to a worker that died (or lost Redis); a marker whose owning
  process is gone (its process lease, :mod:`apps.brokers.ownership`) is taken over at
  once. Either way the taker reconciles with the broker before anything is retried.
- ``placed`` / ``rejected`` / ``expired`` / ``failed`` / ``unknown`` — final; they hold
  the reported :class:`Execution`, which a redelivered order re-publishes without
  touching the broker.

Every change after the claim is a compare-and-set on the exact bytes the writer last saw
(one small Lua script), so two workers can never both move the same marker forward.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

import msgspec
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.typing import EncodableT

from apps.brokers.orders import contract_end
from apps.core import metrics
from apps.core.messages import (
    Direction,
    Execution,
    ExecutionState,
    Money,
    Order,
    Outcome,
    SignedMoney,
)
from apps.core.redis import confirmed
from apps.core.topology import Topology

# Above the ORDERS stream's max_age (20 h), the longest an order can wait to be
# (re)delivered: a marker must outlive every possible redelivery of its order, or a late
# one could buy again.
MARKER_TTL_SECONDS = 24 * 3600


class MarkerStatus(StrEnum):
    INFLIGHT = "inflight"
    PLACED = "placed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    FAILED = "failed"
    UNKNOWN = "unknown"


class Marker(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    status: MarkerStatus
    worker: str  # who wrote this state
    claimed_at: float  # when the current owner claimed the order (epoch seconds)
    updated_at: float
    lease_until: float = 0.0  # inflight: the owner is done with the broker by then
    takeovers: int = 0  # how many times a stale in-flight marker was taken over
    execution: Execution | None = None  # final states: what was reported
    # inflight: the owner's process (apps.brokers.ownership); '' in markers of versions
    # before it, whose owners only their lease can tell.
    incarnation: str = ""

    @property
    def is_final(self) -> bool:
        return self.status is not MarkerStatus.INFLIGHT


class PendingSettlement(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """A placed contract whose outcome is still to be published (``settle_key``)."""

    contract_id: str
    owner: str  # the worker that wrote it; another adopts it when this one is gone
    placed: Execution  # what the settled execution is made from
    broker_account_id: str = ""
    expires_at: float = 0.0  # epoch seconds the contract is due to end
    # Entries in the self-contained form carry the whole order instead of the two fields
    # above; they are still read.
    order: Order | None = None

    @property
    def account_id(self) -> str:
        return self.order.broker_account_id if self.order else self.broker_account_id

    @property
    def due(self) -> float:
        if self.order is not None:
            return contract_end(self.order, self.placed.at)
        return self.expires_at


# Stored forms --------------------------------------------------------------------------
#
# What Redis holds is packed as msgpack arrays (no field names) and without what the
# order itself says: a placed order writes its marker and its pending settlement in one
# step, so each byte here is paid for 10,000 times by a 10,000-order fan-out — in the
# worker's socket writes, in Redis, and in the append-only file that shares the disk
# with JetStream's fsyncs. The map-shaped, self-contained form of earlier versions is
# still read. The first element of each array names its form.


class _Result(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """The part of an :class:`Execution` that its order does not already say."""

    v: int
    state: ExecutionState
    at: float
    broker_kind: str
    stake: Money | None
    currency: str | None
    reason: str | None
    contract_id: str | None
    buy_price: Money | None
    payout: Money | None
    latency_ms: float | None
    outcome: Outcome | None
    profit: SignedMoney | None
    # Last and defaulted: a result stored before the field existed still reads.
    account_refused: bool = False
    expiry_at: float | None = None
    entry_spot: Money | None = None
    exit_spot: Money | None = None
    balance_after: Money | None = None


class _Terms(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """The order's terms an :class:`Execution` repeats, for a stored form read without
    its order (a pending settlement another worker adopts)."""

    asset: str = ""
    direction: Direction | None = None
    expiry_seconds: int | None = None
    signal_created_at: float | None = None

    @classmethod
    def of(cls, e: Execution | Order) -> _Terms:
        created = e.signal_created_at
        return cls(e.asset, e.direction, e.expiry_seconds, created)


# _Result's fields, read off an Execution in one C call (pack runs twice per placed order).
_result_fields = operator.attrgetter(*_Result.__struct_fields__)


def _result(e: Execution) -> _Result:
    return _Result(*_result_fields(e))


def _execution(
    r: _Result,
    order_id: str,
    signal_id: str,
    channel_id: str,
    subscription_id: str,
    user_id: str,
    terms: _Terms,
) -> Execution:
    return Execution(
        order_id=order_id,
        signal_id=signal_id,
        channel_id=channel_id,
        subscription_id=subscription_id,
        user_id=user_id,
        **dict(zip(_Result.__struct_fields__, msgspec.structs.astuple(r), strict=True)),
        **dict(zip(_Terms.__struct_fields__, msgspec.structs.astuple(terms), strict=True)),
    )


class _StoredMarker(msgspec.Struct, array_like=True, gc=False, frozen=True, tag="m2"):
    """A :class:`Marker` under ``key("order", order_id)``: its execution without the ids
    of the order, which whoever reads a marker holds (the order it was redelivered)."""

    status: MarkerStatus
    worker: str
    claimed_at: float
    updated_at: float
    lease_until: float
    takeovers: int
    result: _Result | None
    incarnation: str = ""


class _StoredPending(msgspec.Struct, array_like=True, gc=False, frozen=True, tag="p2"):
    """A :class:`PendingSettlement` under its order id in a settlements hash: no order is
    at hand when it is read (another worker may adopt it), so it keeps the ids but the
    order id, which is the hash field."""

    contract_id: str
    owner: str
    broker_account_id: str
    expires_at: float
    signal_id: str
    channel_id: str
    subscription_id: str
    user_id: str
    placed: _Result
    # Last and defaulted: a pending settlement stored before the field existed still reads.
    terms: _Terms = _Terms()


_encoder = msgspec.msgpack.Encoder()
_marker_decoder = msgspec.msgpack.Decoder(_StoredMarker)
_pending_decoder = msgspec.msgpack.Decoder(_StoredPending)
# Written by earlier versions: maps with field names and whole executions.
_self_contained_marker = msgspec.msgpack.Decoder(Marker)
_self_contained_pending = msgspec.msgpack.Decoder(PendingSettlement)


def pack(value: Marker | PendingSettlement) -> bytes:
    if isinstance(value, Marker):
        e = value.execution
        return _encoder.encode(
            _StoredMarker(
                value.status,
                value.worker,
                value.claimed_at,
                value.updated_at,
                value.lease_until,
                value.takeovers,
                None if e is None else _result(e),
                value.incarnation,
            )
        )
    p = value.placed
    return _encoder.encode(
        _StoredPending(
            value.contract_id,
            value.owner,
            value.account_id,
            value.due,
            p.signal_id,
            p.channel_id,
            p.subscription_id,
            p.user_id,
            _result(p),
            _Terms.of(p),
        )
    )


def unpack_marker(packed: bytes, order: Order) -> Marker:
    """The marker of ``order`` (``msgspec.DecodeError`` if it is in no form known here)."""
    try:
        m = _marker_decoder.decode(packed)
    except msgspec.DecodeError:
        return _self_contained_marker.decode(packed)
    return Marker(
        status=m.status,
        worker=m.worker,
        claimed_at=m.claimed_at,
        updated_at=m.updated_at,
        lease_until=m.lease_until,
        takeovers=m.takeovers,
        incarnation=m.incarnation,
        execution=None
        if m.result is None
        else _execution(
            m.result,
            order.order_id,
            order.signal_id,
            order.channel_id,
            order.subscription_id,
            order.user_id,
            _Terms.of(order),
        ),
    )


def unpack_pending(order_id: str, packed: bytes) -> PendingSettlement:
    """The pending settlement stored under ``order_id``."""
    try:
        p = _pending_decoder.decode(packed)
    except msgspec.DecodeError:
        return _self_contained_pending.decode(packed)
    return PendingSettlement(
        contract_id=p.contract_id,
        owner=p.owner,
        placed=_execution(
            p.placed, order_id, p.signal_id, p.channel_id, p.subscription_id, p.user_id, p.terms
        ),
        broker_account_id=p.broker_account_id,
        expires_at=p.expires_at,
    )


# The group scripts take their items as one framed argument (`_frame`) and build the
# per-order key names from the prefixes they are given, instead of one KEYS entry and
# several ARGV entries per order: a client's per-argument cost would otherwise be paid
# once per order, and it would outweigh the rest of the worker's work on it. The scripts'
# cmsgpack cannot carry binary values, hence the framing. Like every multi-order script
# here, they assume one Redis (no cluster).
_FIELDS = """
local blob = ARGV[#ARGV]
local count = struct.unpack('>I4', blob, 1)
local taken, pos = 0, 5 + 4 * count
local function more() return taken < count end
local function field()
  taken = taken + 1
  local n = struct.unpack('>I4', blob, 1 + 4 * taken)
  pos = pos + n
  return string.sub(blob, pos - n, pos - 1)
end
"""

# KEYS[1]: the settlements hash. ARGV: ttl, marker key prefix, claims key prefix, items:
# per item order id, expected, new, settlement ('' = none), account id, contract id.
# Moves each marker only if nobody changed it since `expected` was read; a placed order's
# pending settlement and its claim on the contract are written in the same step, so no
# crash can separate them.
_COMPARE_AND_SET = (
    _FIELDS
    + """
local ttl, markers, claims = ARGV[1], ARGV[2], ARGV[3]
local out, touched, settles = {}, {}, {}
while more() do
  local oid, expected, new = field(), field(), field()
  local settle, account, contract = field(), field(), field()
  local marker = markers .. oid
  local current = redis.call('GET', marker)
  if current ~= expected and current ~= new then
    out[#out + 1] = 0
  else
    -- current == new: this very write, sent again (its reply was lost, or no replica
    -- confirmed it). It is written again, so that the WAIT after it covers it.
    redis.call('SET', marker, new, 'EX', ttl)
    if settle ~= '' then
      local owned = claims .. account
      settles[#settles + 1] = oid
      settles[#settles + 1] = settle
      redis.call('HSET', owned, contract, oid)
      touched[owned] = true
    end
    out[#out + 1] = 1
  end
end
-- One HSET for the whole call: each command a script runs is also one entry in the AOF.
if #settles > 0 then redis.call('HSET', KEYS[1], unpack(settles)) end
-- A claims hash lives a day from its last refresh; refreshing it at most hourly keeps
-- every claim for 23 hours at least (a takeover comes within the 20 hours ORDERS keeps
-- an order) and spares one EXPIRE per account per call.
for owned in pairs(touched) do
  if redis.call('TTL', owned) < ttl - 3600 then redis.call('EXPIRE', owned, ttl) end
end
return out
"""
)

# ARGV: ttl, marker key prefix, items: per item order id, its in-flight marker.
# SET NX GET of every marker in one call: the previous value where one existed.
_CLAIM = (
    _FIELDS
    + """
local ttl, markers = ARGV[1], ARGV[2]
local out = {}
while more() do
  local oid, marker = field(), field()
  local before = redis.call('SET', markers .. oid, marker, 'NX', 'GET', 'EX', ttl)
  -- This very claim, sent again: written again, so that the WAIT after it covers it.
  if before == marker then redis.call('SET', markers .. oid, marker, 'EX', ttl) end
  out[#out + 1] = before
end
return out
"""
)

# Items per script call: large enough to amortise a call, small enough that one call never
# holds Redis for long (a Lua script blocks every other client while it runs, the API's
# signal intake among them). A finish does several times a claim's work per order (the
# marker, its pending settlement, the contract claim), hence the smaller slice: a call of
# either holds Valkey for well under a millisecond.
_CLAIM_PER_CALL = 256
_FINISH_PER_CALL = 64

# KEYS: the account's contract claims. ARGV: contract id, order id, ttl.
# 1 when the contract is (now, or already) this order's; 0 when another order owns it.
# A claim already this order's is written again, so that the WAIT after it covers it.
_CLAIM_CONTRACT = """
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner and owner ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS: marker. ARGV: expected. Gives up a claim that never reached the broker. (A
# release that a failover loses only delays the order: its marker lapses and is taken
# over, and nothing was bought.)
_COMPARE_AND_DELETE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


def _packed_once(packed: dict[int, bytes], marker: Marker) -> bytes:
    """Orders worked together share one marker object: pack it once, not once per order."""
    value = packed.get(id(marker))
    if value is None:
        value = packed[id(marker)] = pack(marker)
    return value


def _frame(fields: Sequence[bytes]) -> bytes:
    """Fields as one argument: their count and lengths (4-byte big-endian), then their
    bytes one after the other."""
    n = len(fields)
    return struct.pack(f">I{n}I", n, *map(len, fields)) + b"".join(fields)


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of claiming one order: ``mine`` when the marker is ours now, else the
    ``existing`` marker someone wrote before (with its exact bytes for compare-and-set)."""

    order: Order
    mine: bytes | None
    existing: bytes | None


# copier_valkey_script_seconds of the group scripts, bound once (one observe per call).
_CLAIM_SECONDS = metrics.valkey_script_seconds.labels("markers_claim")
_FINISH_SECONDS = metrics.valkey_script_seconds.labels("markers_finish")


class MarkerBook:
    """The order markers of one worker. With ``replicas`` > 0 (REDIS_WAIT_REPLICAS), each
    script call that writes one is followed by ``WAIT replicas`` on its connection
    (:func:`apps.core.redis.confirmed`) and raises :class:`Unreplicated` — a dependency
    error, which the runner holds its orders through — until that many replicas hold
    it: a claim or takeover a failover could lose never lets the broker be called. The
    scripts write again what they are sent again, so a write re-sent after a failover
    that lost it is written on the new primary and covered by the WAIT there."""

    def __init__(
        self, redis: Redis, topology: Topology, settle_key: str, *, replicas: int = 0
    ) -> None:
        self.redis = redis
        self.topology = topology
        self.settle_key = settle_key
        self.replicas = replicas
        self._cas = redis.register_script(_COMPARE_AND_SET)
        self._claim = redis.register_script(_CLAIM)
        self._cad = redis.register_script(_COMPARE_AND_DELETE)
        self._claim_contract = redis.register_script(_CLAIM_CONTRACT)

    def key(self, order_id: str) -> str:
        return self.topology.order_marker_key(order_id)

    def claims_key(self, broker_account_id: str) -> str:
        """Contract id → order id for one broker account: which order owns which contract."""
        return self.topology.contract_claims_key(broker_account_id)

    async def contract_owners(
        self, broker_account_id: str, contract_ids: Sequence[str]
    ) -> dict[str, str]:
        if not contract_ids:
            return {}
        values = cast(
            list[bytes | None],
            await self.redis.hmget(self.claims_key(broker_account_id), list(contract_ids)),
        )
        return {
            cid: value.decode()
            for cid, value in zip(contract_ids, values, strict=True)
            if value is not None
        }

    async def _run(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[EncodableT]
    ) -> Any:
        """A writing script's reply, confirmed by ``replicas`` replicas (when > 0)."""
        if not self.replicas:
            return await script(keys=keys, args=args)
        return await confirmed(
            self.redis, self.replicas, "EVAL", script.script, len(keys), *keys, *args
        )

    async def claim_contract(self, broker_account_id: str, contract_id: str, order_id: str) -> bool:
        """Assign a contract found by reconciliation to ``order_id``, unless another owns it."""
        done = await self._run(
            self._claim_contract,
            [self.claims_key(broker_account_id)],
            [contract_id, order_id, MARKER_TTL_SECONDS],
        )
        return bool(done == 1)

    async def claim(self, orders: Sequence[tuple[Order, Marker]]) -> list[Claim]:
        """``SET NX GET`` every order's in-flight marker, one script call per 256 orders."""
        claims: list[Claim] = []
        prefix = self.key("")
        for start in range(0, len(orders), _CLAIM_PER_CALL):
            part = orders[start : start + _CLAIM_PER_CALL]
            by_marker: dict[int, bytes] = {}
            packed = [_packed_once(by_marker, marker) for _, marker in part]
            fields: list[bytes] = []
            for (order, _), value in zip(part, packed, strict=True):
                fields += (order.order_id.encode(), value)
            with _CLAIM_SECONDS.time():
                previous = cast(
                    list[bytes | None],
                    await self._run(self._claim, [], [MARKER_TTL_SECONDS, prefix, _frame(fields)]),
                )
            # A marker equal to the one written here is this very claim, sent again after
            # a lost reply (each claim's bytes name this process and the instant).
            claims += [
                Claim(order, value, None)
                if before is None or before == value
                else Claim(order, None, before)
                for (order, _), value, before in zip(part, packed, previous, strict=True)
            ]
        return claims

    async def get(self, order_id: str) -> bytes | None:
        return cast(bytes | None, await self.redis.get(self.key(order_id)))

    async def compare_and_set(
        self,
        order_id: str,
        expected: bytes,
        new: Marker,
        settlement: PendingSettlement | None = None,
    ) -> bytes | None:
        """The new marker's bytes when it replaced ``expected``; ``None`` if it changed."""
        packed = pack(new)
        [done] = await self._finish([(order_id, expected, packed, settlement)])
        return packed if done else None

    async def finish_many(
        self, items: Sequence[tuple[str, bytes, Marker, PendingSettlement | None]]
    ) -> list[bool]:
        """Several compare-and-sets (order_id, expected, new, settlement), one script call
        per 64 of them."""
        packed: dict[int, bytes] = {}
        return await self._finish(
            [
                (order_id, expected, _packed_once(packed, new), pending)
                for order_id, expected, new, pending in items
            ]
        )

    async def _finish(
        self, items: Sequence[tuple[str, bytes, bytes, PendingSettlement | None]]
    ) -> list[bool]:
        done: list[bool] = []
        prefixes = (self.key(""), self.claims_key(""))
        for start in range(0, len(items), _FINISH_PER_CALL):
            fields: list[bytes] = []
            for order_id, expected, packed, pending in items[start : start + _FINISH_PER_CALL]:
                if pending is None:
                    fields += (order_id.encode(), expected, packed, b"", b"", b"")
                else:
                    fields += (
                        order_id.encode(),
                        expected,
                        packed,
                        pack(pending),
                        pending.account_id.encode(),
                        pending.contract_id.encode(),
                    )
            with _FINISH_SECONDS.time():
                results = cast(
                    list[int],
                    await self._run(
                        self._cas,
                        [self.settle_key],
                        [MARKER_TTL_SECONDS, *prefixes, _frame(fields)],
                    ),
                )
            done += [r == 1 for r in results]
        return done

    async def release(self, order_id: str, mine: bytes) -> None:
        """Drop our claim (nothing reached the broker), so a redelivery need not wait."""
        await self._run(self._cad, [self.key(order_id)], [mine])


class AccountClaims:
    """The markers' contract claims of one broker account, as one order sees them."""

    def __init__(self, markers: MarkerBook, order: Order) -> None:
        self.markers = markers
        self.order = order

    async def owners(self, contract_ids: Sequence[str]) -> dict[str, str]:
        return await self.markers.contract_owners(self.order.broker_account_id, contract_ids)

    async def claim(self, contract_id: str) -> bool:
        return await self.markers.claim_contract(
            self.order.broker_account_id, contract_id, self.order.order_id
        )
