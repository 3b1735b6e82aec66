"""Every Prometheus metric of the copier, defined once, and the ways a process serves them.

The metrics live in prometheus-client's default registry, so a process exposes whatever
its code touched: the API under ``/metrics`` on its own HTTP port (apps.api.app), the
router, ledger and workers on their own metrics port (:func:`serve`, started by
apps.core.service when ``METRICS_ENABLED``). Label values are bounded: states, stages,
streams, consumers, broker kinds and codes, never a signal, order or user id; a broker's
error codes pass :func:`bounded_code`, so an unexpected flood of codes ends in ``other``.

JetStream's view of a process's own consumers and streams is read by :func:`watch_jetstream`,
a task that refreshes gauges every few seconds: a collector called at scrape time runs in
the HTTP server's thread and cannot await the NATS client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import Iterable

from nats.js.client import JetStreamContext
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

log = logging.getLogger("metrics")

SIGNAL_OUTCOMES = ("accepted", "duplicate", "refused")
# A refused signal's reason, by the HTTP status of the API's answer.
_REFUSALS_BY_STATUS = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    429: "rate_limited",
    503: "unavailable",
}
REFUSAL_REASONS = (*_REFUSALS_BY_STATUS.values(), "other")
ORDER_STATES = ("placed", "rejected", "expired", "failed", "unknown")
# How an outbox delivery ended (apps.notifier.outbox): sent, put back for a retry, failed.
DELIVERY_RESULTS = ("sent", "pending", "failed")
DELIVERY_CHANNELS = ("email", "telegram")
STAGES = ("accept_to_routed", "routed_to_placed", "accept_to_placed", "placed_to_settled")
BROKER_CALLS = ("buy", "buy_batch", "reconcile")
# Distinct broker codes a process labels by name before it calls every new one "other".
MAX_CODES = 64
OTHER = "other"
STAGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SCRIPT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# How often each consumer's process reads its consumers' and streams' info.
JETSTREAM_EVERY = 5.0

signals_total = Counter(
    "copier_signals_total", "Signals submitted to the API, by outcome.", ["outcome"]
)
signals_refused_total = Counter(
    "copier_signals_refused_total", "Signals the API refused, by reason.", ["reason"]
)
orders_total = Counter(
    "copier_orders_total",
    "Orders brought to a final state by a worker, by broker kind and state.",
    ["broker", "state"],
)
order_rejections_total = Counter(
    "copier_order_rejections_total",
    "Orders a broker rejected, by broker kind and the broker's error code.",
    ["broker", "reason"],
)
notifications_total = Counter(
    "copier_notifications_total",
    "Notifier outbox deliveries, by delivery channel and how they ended "
    "(sent; pending: a retry is due; failed).",
    ["channel", "result"],
)
stage_seconds = Histogram(
    "copier_stage_seconds",
    "Time between two points on a signal's path.",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
broker_call_seconds = Histogram(
    "copier_broker_call_seconds",
    "Duration of calls to a broker, by broker kind and call.",
    ["broker", "call"],
    buckets=CALL_BUCKETS,
)
broker_errors_total = Counter(
    "copier_broker_errors_total",
    "Errors a broker answered (rejections and transient failures), by code.",
    ["broker", "code"],
)
consumer_pending = Gauge(
    "copier_consumer_pending_messages",
    "Messages of the stream not yet delivered to the consumer.",
    ["stream", "consumer"],
)
consumer_ack_pending = Gauge(
    "copier_consumer_ack_pending_messages",
    "Messages delivered to the consumer and not yet acknowledged.",
    ["stream", "consumer"],
)
consumer_redelivered = Gauge(
    "copier_consumer_redelivered_messages",
    "Messages delivered to the consumer more than once and not yet acknowledged.",
    ["stream", "consumer"],
)
stream_replicas = Gauge(
    "copier_stream_replicas", "Replicas the stream is configured with.", ["stream"]
)
stream_current_replicas = Gauge(
    "copier_stream_current_replicas",
    "Replicas of the stream that are current (the leader and current followers).",
    ["stream"],
)
ledger_lag_seconds = Gauge(
    "copier_ledger_lag_seconds",
    "Age of the oldest execution the ledger holds that MongoDB does not yet have.",
)
websockets_open = Gauge("copier_websockets_open", "Live-progress WebSockets open on this API.")
valkey_script_seconds = Histogram(
    "copier_valkey_script_seconds",
    "Duration of one Valkey script call, by script.",
    ["script"],
    buckets=SCRIPT_BUCKETS,
)

_CODE_SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,47}")
_codes: set[str] = set()
_codes_lock = threading.Lock()


def bounded_code(code: str | None) -> str:
    """``code`` as a label value: itself if well formed and among the first ``MAX_CODES``
    this process saw, else ``other``, so a label's values stay few whatever a broker says."""
    if not code or not _CODE_SHAPE.fullmatch(code):
        return OTHER
    if code in _codes:
        return code
    with _codes_lock:
        if len(_codes) >= MAX_CODES:
            return OTHER
        _codes.add(code)
    return code


def refusal_reason(status_code: int) -> str:
    """The label of a signal refused with HTTP ``status_code``: one of ``REFUSAL_REASONS``."""
    return _REFUSALS_BY_STATUS.get(status_code, OTHER)


def exposition() -> tuple[bytes, str]:
    """The default registry in the text exposition format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST


def serve(port: int, host: str = "0.0.0.0") -> bool:
    """Serve the default registry on ``port`` from a daemon thread (no event loop work),
    on every interface: Prometheus scrapes it from another host or container.

    A port already taken is one error line and ``False``: the service goes on without
    its metrics endpoint, since trading matters more than watching it."""
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        log.error("metrics not served: port %d: %s", port, exc)
        return False
    log.info("metrics on http://%s:%d/metrics", host, port)
    return True


async def watch_jetstream(
    js: JetStreamContext,
    consumers: Iterable[tuple[str, str]],
    *,
    every: float = JETSTREAM_EVERY,
) -> None:
    """Refresh the consumer and stream gauges of ``consumers`` ((stream, durable) pairs)
    every ``every`` seconds until cancelled; a failed read leaves the last values."""
    pairs = list(consumers)
    streams = sorted({stream for stream, _ in pairs})
    while True:
        for stream, durable in pairs:
            with contextlib.suppress(Exception):
                info = await js.consumer_info(stream, durable)
                consumer_pending.labels(stream, durable).set(info.num_pending or 0)
                consumer_ack_pending.labels(stream, durable).set(info.num_ack_pending or 0)
                consumer_redelivered.labels(stream, durable).set(info.num_redelivered or 0)
        for stream in streams:
            with contextlib.suppress(Exception):
                sinfo = await js.stream_info(stream)
                configured = sinfo.config.num_replicas or 1
                current = 1  # the leader that answered
                if sinfo.cluster is not None:
                    current = 1 + sum(1 for p in sinfo.cluster.replicas or () if p.current)
                stream_replicas.labels(stream).set(configured)
                stream_current_replicas.labels(stream).set(current)
        await asyncio.sleep(every)


def watch_jetstream_soon(
    enabled: bool, js: JetStreamContext, consumers: Iterable[tuple[str, str]]
) -> asyncio.Task[None] | None:
    """:func:`watch_jetstream` as a task when ``enabled`` (stop it with :func:`stop_watching`)."""
    return asyncio.create_task(watch_jetstream(js, consumers)) if enabled else None


async def stop_watching(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
