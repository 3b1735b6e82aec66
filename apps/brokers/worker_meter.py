"""What a broker worker counts and times for Prometheus (apps.core.metrics), in one place.

Orders are counted when their markers are finished (once each, never again on a
re-report), with the stage times of the placed ones; a broker call is one timing and its
error codes; nothing is observed per order inside the placement window. A meter made
with ``enabled=False`` (``METRICS_ENABLED``) does nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Sequence

from nats.aio.msg import Msg

from apps.brokers.base import PlaceOutcome, Rejected, TransientFailure
from apps.core import metrics
from apps.core.messages import Execution, ExecutionState

# Signals whose routed instant a worker remembers for copier_stage_seconds.
ROUTED_KEPT = 1024


class WorkerMeter:
    def __init__(self, kind: str, *, enabled: bool) -> None:
        self.kind = kind
        self.enabled = enabled
        # When JetStream stored each recent signal's first ORDERS message (the routed
        # instant of copier_stage_seconds), at most ROUTED_KEPT signals.
        self._routed_at: dict[str, float] = {}

    def routed(self, signal_id: str, msg: Msg) -> None:
        """Remember when the signal's orders were stored on ORDERS (the earliest seen)."""
        if not self.enabled:
            return
        with contextlib.suppress(Exception):  # a message without JetStream metadata
            routed = msg.metadata.timestamp.timestamp()
            if routed < self._routed_at.get(signal_id, routed + 1):
                self._routed_at[signal_id] = routed
                if len(self._routed_at) > ROUTED_KEPT:
                    del self._routed_at[next(iter(self._routed_at))]

    def broker_call(self, call: str, started: float, outcomes: Sequence[PlaceOutcome] = ()) -> None:
        """One broker call's duration (from ``time.perf_counter()`` at ``started``), and
        the error codes it answered."""
        if not self.enabled:
            return
        metrics.broker_call_seconds.labels(self.kind, call).observe(time.perf_counter() - started)
        codes: defaultdict[str, int] = defaultdict(int)
        for outcome in outcomes:
            if isinstance(outcome, (Rejected, TransientFailure)):
                codes[outcome.code] += 1
        for code, n in codes.items():
            metrics.broker_errors_total.labels(self.kind, metrics.bounded_code(code)).inc(n)

    def rejected(self, outcome: Rejected) -> None:
        if self.enabled:
            metrics.order_rejections_total.labels(
                self.kind, metrics.bounded_code(outcome.code)
            ).inc()

    def finished(self, executions: Sequence[Execution]) -> None:
        """Orders this worker brought to a final state, once each (their markers were
        finished by this call): counted by state, and the placed ones' stage times."""
        if not self.enabled:
            return
        states: defaultdict[str, int] = defaultdict(int)
        for execution in executions:
            states[execution.state.value] += 1
            if execution.state is ExecutionState.PLACED:
                if execution.latency_ms is not None:
                    metrics.stage_seconds.labels("accept_to_placed").observe(
                        execution.latency_ms / 1000
                    )
                routed = self._routed_at.get(execution.signal_id)
                if routed is not None:
                    metrics.stage_seconds.labels("routed_to_placed").observe(execution.at - routed)
        for state, n in states.items():
            metrics.orders_total.labels(self.kind, state).inc(n)
