"""The signal's MongoDB record, written by two services.

The API writes it right after JetStream's PubAck, so the dashboard lists a signal at
once; the ledger writes it from its own consumer of SIGNALS, so that every signal the
stream holds — and the subscribers may have traded — has one, whatever became of the
API's write (:mod:`apps.ledger.signals`). Both derive it from the same published
:class:`~apps.core.messages.Signal`, so they write the same fields.
"""

from __future__ import annotations

from decimal import Decimal

from odmantic import Field, Index, Model

from apps.core.messages import Sender, Signal


class SignalRecord(Model):
    """The signal as MongoDB keeps it (statistics live in `signal_stats`, by the ledger)."""

    id: str = Field(primary_field=True)
    channel_id: str
    sender_id: str
    asset: str
    direction: str
    expiry_seconds: int
    stake: Decimal
    created_at: float
    valid_until: float
    client_id: str | None = None
    # Who sent it: {"id", "display_name", "role"} (a plain mapping: odmantic cannot dump an
    # optional embedded model), as :func:`sent_by_of` makes it; None before it was kept.
    sent_by: dict[str, str] | None = None

    model_config = {
        "collection": "signals",
        "indexes": lambda: [Index(SignalRecord.channel_id, SignalRecord.created_at)],
    }


def record_of(signal: Signal) -> SignalRecord:
    return SignalRecord(
        id=signal.signal_id,
        channel_id=signal.channel_id,
        sender_id=signal.sender_id,
        asset=signal.asset,
        direction=signal.direction.value,
        expiry_seconds=signal.expiry_seconds,
        stake=signal.stake,
        created_at=signal.created_at,
        valid_until=signal.valid_until,
        client_id=signal.client_id,
        sent_by=sent_by_of(signal.sent_by),
    )


def sent_by_of(sender: Sender | None) -> dict[str, str] | None:
    """The record's form of who sent a signal (fixed when it was accepted)."""
    if sender is None:
        return None
    return {"id": sender.id, "display_name": sender.display_name, "role": sender.role.value}
