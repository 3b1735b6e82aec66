"""What a broker worker is tuned by (from Settings, per process): its limits, leases,
AckWait beats and bookkeeping bounds, each with the reason for its default."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class RunnerConfig:
    worker_id: str
    # Orders at the broker at once (a place_many group holds one slot per order).
    concurrency: int = 256
    # The longest a placement may run past max(now, valid_until): see Settings.
    call_timeout: float = 30.0
    # An in-flight marker is its owner's for this long without renewal; a working owner
    # renews every third of it. Shorter: a crashed worker's orders are taken over sooner;
    # longer: the bookkeeping may wait longer for a burst of placements (finish_defer).
    lease_seconds: float = 15.0
    # Pull in batches: one fetch round trip serves up to this many messages.
    fetch_batch: int = 64
    fetch_timeout: float = 0.5
    # Fetched messages being worked at once; beyond it the loop stops pulling (their
    # orders would only wait for slots while their AckWait runs).
    max_messages: int = 1024
    # AckWait of broker-<kind> is 2 s, so that a dead worker's orders come back while they
    # can still be placed: a few in_progress beats per AckWait keep a live worker's.
    progress_interval: float = 0.5
    # The process lease (apps.brokers.ownership): a worker that died without a successor
    # has its in-flight orders taken over this long after its last renewal.
    process_lease_seconds: float = 3.0
    # A buy the broker received is booked within this long: whoever reconciles an order
    # in doubt asks no sooner after its claim (Deriv answers in well under a second).
    booking_bound: float = 3.0
    # How often a marker held by someone else is looked at again while we wait for it.
    poll_interval: float = 0.2
    # Clock skew allowance between workers before a lease is considered over.
    stale_grace: float = 2.0
    # Orders of one signal per place_many call: what the adapter places in one batch call
    # (the Deriv worker sets its BATCH_MAX_ORDERS).
    place_chunk: int = 40
    max_retry_pause: float = 2.0
    # While a burst of placements goes on, what follows a broker's answer (the final
    # markers, pending settlements, executions, acks) waits until no chunk is waiting
    # for or at the broker, at most this long, and only while the answered orders'
    # leases hold (until a third of a lease before the first would lapse): the
    # placements of a fan-out are what cannot wait, its bookkeeping can
    # (Runner._finish_soon).
    finish_defer: float = 10.0
    # Settlement followers: heartbeat TTL and how often orphans are looked for.
    heartbeat_ttl: float = 30.0
    settle_scan_interval: float = 10.0
    # Replicas that must confirm a marker or process lease write before it counts
    # (REDIS_WAIT_REPLICAS; docs/markers-and-leases.md, "Valkey failover"). 0: one node.
    wait_replicas: int = 0
    # Prometheus metrics (apps.core.metrics) counted and timed (METRICS_ENABLED).
    metrics_enabled: bool = True
