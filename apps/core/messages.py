"""Every payload that crosses NATS, defined once and used by every service.

JSON on the wire (so `nats sub`/`nats stream view` show readable messages), one encoder
and one decoder per type, created once. Every message carries a version field ``v``;
money is ``Decimal`` (encoded as a string), never float; ids are sortable (apps.core.ids).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

import msgspec

# msgspec cannot range-check Decimal; bounds are enforced where amounts enter (API, risk).
Money = Decimal
SignedMoney = Decimal


class Direction(StrEnum):
    CALL = "CALL"
    PUT = "PUT"


class ExecutionState(StrEnum):
    PLACED = "placed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SETTLED = "settled"


FINAL_STATES = frozenset(
    {
        ExecutionState.PLACED,
        ExecutionState.REJECTED,
        ExecutionState.EXPIRED,
        ExecutionState.FAILED,
        ExecutionState.UNKNOWN,
    }
)


class Outcome(StrEnum):
    WON = "won"
    LOST = "lost"


# Messages are frozen, plain data that cannot take part in a reference cycle, so they
# are kept out of the cyclic collector (``gc=False``): a worker following a large
# fan-out holds hundreds of thousands of them, and every tracked object lengthens each
# collection's pause (see apps.core.gc_pacing). The same holds for the broker structs.
class SenderRole(StrEnum):
    OWNER = "owner"
    DELEGATE = "delegate"
    ADMIN = "admin"  # an administrator who is neither the owner nor a delegate


class Sender(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """Who sent a signal, as the API knew them when it accepted it: the audit trail.

    Carried in the signal itself so that every record of it (the API's, or the ledger's
    from the stream when the API died after the PubAck) names the same sender, and a later
    rename or a removed delegate does not rewrite the history."""

    id: str
    display_name: str
    role: SenderRole


class Signal(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """A provider's trade idea for one channel, as accepted by the API."""

    v: int = 1
    signal_id: str
    channel_id: str
    sender_id: str
    asset: str
    direction: Direction
    expiry_seconds: int
    stake: Money
    created_at: float  # epoch seconds, stamped by the API
    valid_until: float  # nothing is placed after this instant
    client_id: str | None = None
    # How far (seconds) a broker's expiry may be from created_at + expiry_seconds when the
    # broker cannot take it exactly (IQ Option's whole minutes); None: the router's
    # setting (expiry_tolerance_seconds).
    expiry_tolerance_seconds: int | None = None
    # Who sent it; None only in signals accepted before the API stamped it.
    sent_by: Sender | None = None


class Order(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """One subscriber's trade for one signal, sized by that subscriber's risk settings."""

    v: int = 1
    order_id: str  # order_id_for(signal_id, subscription_id): stable across redeliveries
    signal_id: str
    channel_id: str
    subscription_id: str
    user_id: str
    broker_kind: str
    broker_account_id: str
    asset: str
    direction: Direction
    expiry_seconds: int
    stake: Money
    currency: str
    signal_created_at: float
    valid_until: float
    # Epoch seconds the contract ends, for brokers whose contracts end at a set instant
    # (IQ Option): the legal expiry the router's per-broker rules chose for this order.
    expiry_at: int | None = None


class OrderBatch(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """Orders of one signal for one broker kind and shard, in one JetStream message.

    Grouping pays JetStream's per-message cost (client CPU, a PubAck, an ack) once per
    group instead of once per order when a signal fans out to thousands; exactly-once
    stays per order through the markers.
    """

    v: int = 1
    signal_id: str
    broker_kind: str
    shard: int
    orders: list[Order]


class Execution(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """What happened to one order; a settled execution follows a placed one."""

    v: int = 1
    order_id: str
    signal_id: str
    channel_id: str
    subscription_id: str
    user_id: str
    state: ExecutionState
    at: float  # epoch seconds when this state was reached
    broker_kind: str = ""
    reason: str | None = None  # why rejected / failed / expired / unknown
    stake: Money | None = None
    currency: str | None = None
    contract_id: str | None = None
    buy_price: Money | None = None
    payout: Money | None = None
    latency_ms: float | None = None  # signal accepted → this state, for placements
    outcome: Outcome | None = None
    profit: SignedMoney | None = None
    # The broker refused the account's credentials: the ledger marks the broker account
    # as needing re-linking and pauses its subscriptions (apps.ledger.relink).
    account_refused: bool = False
    # The trade as the subscriber checks it against the broker's statement: the order's
    # terms (stamped from the order on every state), the spots the broker reported, and
    # the account's balance after the broker's last word on this order (when it said).
    asset: str = ""
    direction: Direction | None = None
    expiry_seconds: int | None = None
    expiry_at: float | None = None  # epoch seconds the contract ends, when known
    signal_created_at: float | None = None
    entry_spot: Decimal | None = None
    exit_spot: Decimal | None = None
    balance_after: Money | None = None


class ExecutionBatch(msgspec.Struct, gc=False, frozen=True, kw_only=True, tag="executions"):
    """Executions of one signal in one message: workers and the router report in
    batches, because one JetStream message per order would dominate the fan-out's cost."""

    v: int = 1
    signal_id: str
    channel_id: str
    executions: list[Execution]


class FanoutStarted(msgspec.Struct, frozen=True, kw_only=True, tag="fanout"):
    """A router's word on how many orders one shard of a signal produced.

    ``total`` counts every subscription the shard considered: each becomes an order that
    reaches exactly one final state (risk rejections included), so the progress bar's
    denominator is the sum over the signal's ``shards``.
    """

    v: int = 1
    signal_id: str
    channel_id: str
    shard: int
    shards: int
    total: int
    signal_created_at: float
    at: float


# Everything on `executions.<channel_id>.<signal_id>`; the "type" field tells them apart.
ExecutionEvent = ExecutionBatch | FanoutStarted


def order_id_for(signal_id: str, subscription_id: str) -> str:
    """The order's id is derived, never random: a redelivered signal produces the same
    ids, so JetStream's de-duplication and the placement markers recognise repeats."""
    return f"{signal_id}.{subscription_id}"


signal_encoder = msgspec.json.Encoder(decimal_format="string")
encode = signal_encoder.encode
signal_decoder = msgspec.json.Decoder(Signal)
order_batch_decoder = msgspec.json.Decoder(OrderBatch)
execution_event_decoder = msgspec.json.Decoder(ExecutionEvent)
