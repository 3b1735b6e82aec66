"""The metrics' names and labels follow the contract (apps.core.metrics): Prometheus
conventions, and label values that stay few whatever the input."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from apps.core import metrics

# Every copier metric and its labels, as the dashboards and alerts name them.
EXPECTED = {
    "copier_signals_total": ("outcome",),
    "copier_signals_refused_total": ("reason",),
    "copier_orders_total": ("broker", "state"),
    "copier_order_rejections_total": ("broker", "reason"),
    "copier_notifications_total": ("channel", "result"),
    "copier_stage_seconds": ("stage",),
    "copier_broker_call_seconds": ("broker", "call"),
    "copier_broker_errors_total": ("broker", "code"),
    "copier_consumer_pending_messages": ("stream", "consumer"),
    "copier_consumer_ack_pending_messages": ("stream", "consumer"),
    "copier_consumer_redelivered_messages": ("stream", "consumer"),
    "copier_stream_replicas": ("stream",),
    "copier_stream_current_replicas": ("stream",),
    "copier_ledger_lag_seconds": (),
    "copier_websockets_open": (),
    "copier_valkey_script_seconds": ("script",),
}
# Labels that may only take one of a fixed set of values.
FIXED = {
    "outcome": set(metrics.SIGNAL_OUTCOMES),
    "reason": None,  # refusal reasons or bounded broker codes: checked below
    "state": set(metrics.ORDER_STATES),
    "stage": set(metrics.STAGES),
    "result": set(metrics.DELIVERY_RESULTS),
    "channel": set(metrics.DELIVERY_CHANNELS),
}


def _defined() -> dict[str, tuple[str, ...]]:
    found = {}
    for value in vars(metrics).values():
        if isinstance(value, Counter | Gauge | Histogram):
            name = value._name  # type: ignore[attr-defined]
            if isinstance(value, Counter):
                name += "_total"
            found[name] = tuple(value._labelnames)  # type: ignore[attr-defined]
    return found


def test_every_metric_of_the_contract_is_defined_once_with_its_labels() -> None:
    assert _defined() == EXPECTED


def test_names_carry_their_unit_and_counters_end_in_total() -> None:
    for name in EXPECTED:
        assert name.startswith("copier_")
        assert name.endswith(("_total", "_seconds", "_messages", "_replicas", "_open")), name


def test_the_stage_histogram_spans_ten_milliseconds_to_a_minute() -> None:
    assert metrics.STAGE_BUCKETS[0] == 0.01 and metrics.STAGE_BUCKETS[-1] == 60.0


def test_broker_codes_are_bounded_and_malformed_ones_are_other() -> None:
    assert metrics.bounded_code("InvalidContractProposal") == "InvalidContractProposal"
    assert metrics.bounded_code("") == metrics.OTHER
    assert metrics.bounded_code(None) == metrics.OTHER
    assert metrics.bounded_code("a code with spaces") == metrics.OTHER
    assert metrics.bounded_code("x" * 100) == metrics.OTHER
    seen = {metrics.bounded_code(f"Code{i}") for i in range(metrics.MAX_CODES * 3)}
    assert len(seen) <= metrics.MAX_CODES + 1  # the first codes, then "other"
    assert metrics.OTHER in seen


def test_refusal_reasons_come_from_the_answers_status() -> None:
    assert metrics.refusal_reason(403) == "forbidden"
    assert metrics.refusal_reason(400) == "invalid"
    assert metrics.refusal_reason(503) == "unavailable"
    assert metrics.refusal_reason(418) == metrics.OTHER
    assert {metrics.refusal_reason(s) for s in range(100, 600)} <= set(metrics.REFUSAL_REASONS)


def test_the_exposition_is_prometheus_text_with_the_copier_families() -> None:
    metrics.signals_total.labels("accepted").inc(0)
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(body.decode())}
    assert {"copier_signals", "copier_stage_seconds", "copier_ledger_lag_seconds"} <= names


def test_label_values_in_use_are_from_their_bounded_sets() -> None:
    for family in REGISTRY.collect():
        if not family.name.startswith("copier_"):
            continue
        for sample in family.samples:
            for label, value in sample.labels.items():
                allowed = FIXED.get(label)
                if allowed is not None:
                    assert value in allowed, (family.name, label, value)
