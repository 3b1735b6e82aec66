"""The fast store of each user's recent trades: its keys, its entries and its reading.

One Valkey hash per user (``<ns>:recent:<user_id>``): field ``<order_id>`` holds the
order's newest execution in any state but settled, field ``<order_id>|s`` its
settlement, so a settlement never replaces its placement's instant and copy delay. The
ledger writes it (apps.ledger.recent, before MongoDB); the API reads it and merges it over
MongoDB's documents (apps.api.trades). Shared here because services share only
apps.core.

An entry is the execution's fields as a msgpack array in Execution's field order: fields
are only ever appended (with defaults), so an entry of an older version still reads, and
one of a newer version reads as unknown (its trade then comes from MongoDB) rather than
wrong. Without the field names an entry is a third of the bytes.
"""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis

from apps.core.messages import Execution, ExecutionState
from apps.core.topology import Topology

SETTLED_SUFFIX = "|s"  # '|' sorts after every character of an order id

_FIELDS = Execution.__struct_fields__
_encoder = msgspec.msgpack.Encoder(decimal_format="string")
_decoder = msgspec.msgpack.Decoder(list[Any])


def recent_key(topology: Topology, user_id: str) -> str:
    return topology.key("recent", user_id)


def field_of(execution: Execution) -> str:
    settled = execution.state is ExecutionState.SETTLED
    return execution.order_id + SETTLED_SUFFIX if settled else execution.order_id


def encode_entry(execution: Execution) -> bytes:
    return _encoder.encode(msgspec.structs.astuple(execution))


def decode_entry(entry: bytes | str) -> Execution | None:
    """The stored execution; ``None`` for an entry this version cannot read."""
    try:
        values = _decoder.decode(entry.encode() if isinstance(entry, str) else entry)
        if len(values) > len(_FIELDS):
            return None  # written by a newer version
        return msgspec.convert(dict(zip(_FIELDS, values, strict=False)), Execution)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


async def recent_of_user(redis: Redis, topology: Topology, user_id: str) -> list[Execution]:
    """The user's recent executions, oldest order first, each order's placement before
    its settlement."""
    raw = await redis.hgetall(recent_key(topology, user_id))
    found = (decode_entry(entry) for _, entry in sorted(raw.items()))
    return [e for e in found if e is not None]
