"""The compose monitoring files load and fit together: the Prometheus config and alert rules
parse, every alert the runbook documents exists with its severity and runbook link, the
Grafana dashboard is a valid JSON model whose queries name only the copier's metrics, and
every path and host the files name exists in compose.yaml or the repository.

Pure file checks, no servers. Where `promtool` is installed (Debian's `prometheus` package
ships it) the files also pass Prometheus' own checks and the alert unit tests of
ops/prometheus/alerts.test.yml."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.compose_file import bind_mounts, host_path, load_compose

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = ROOT / "ops" / "prometheus"
GRAFANA_DIR = ROOT / "ops" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "copier.json"

# The metrics of the shared contract (apps/core/metrics.py), by kind: a histogram is queried
# through its _bucket, _sum and _count series. `up` is Prometheus' own, per scrape target.
COUNTERS = {
    "copier_signals_total",
    "copier_signals_refused_total",
    "copier_orders_total",
    "copier_order_rejections_total",
    "copier_broker_errors_total",
}
GAUGES = {
    "copier_consumer_pending_messages",
    "copier_consumer_ack_pending_messages",
    "copier_consumer_redelivered_messages",
    "copier_stream_replicas",
    "copier_stream_current_replicas",
    "copier_ledger_lag_seconds",
    "copier_websockets_open",
    "up",
}
HISTOGRAMS = {"copier_stage_seconds", "copier_broker_call_seconds", "copier_valkey_script_seconds"}
CONTRACT_SERIES = (
    COUNTERS
    | GAUGES
    | {f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
)

# Prometheus jobs of the contract, and the compose service each one scrapes.
JOBS = {"api", "router", "ledger", "notifier", "worker-deriv", "worker-iqoption"}

# Alert → (its runbook anchor in docs/OPERATIONS.md, the metric its expression must read).
ALERTS = {
    "CopierUnknownOutcome": ("unknown-outcome", "copier_orders_total"),
    "CopierPendingOrdersGrowing": ("pending-orders-growing", "copier_consumer_pending_messages"),
    "CopierLedgerLagging": ("ledger-lagging", "copier_ledger_lag_seconds"),
    "CopierServiceDown": ("service-down", "up"),
    "CopierStreamWithoutQuorum": ("stream-without-quorum", "copier_stream_current_replicas"),
}
SEVERITIES = {"critical", "warning"}

# Words of PromQL that are not metric names: functions, aggregations, operators, modifiers.
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "rate", "irate", "increase", "delta", "idelta", "deriv",
    "predict_linear", "histogram_quantile", "absent", "absent_over_time", "floor", "ceil",
    "round", "abs", "clamp_min", "clamp_max", "vector", "scalar", "time", "resets", "changes",
    "avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "label_replace",
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan",
}  # fmt: skip

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?(?:ms|[smhdwy])?\b")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_DURATION = re.compile(r"^\d+[smh]$")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: its identifiers once label matchers,
    ranges, grouping labels, Grafana variables, strings, numbers and PromQL's own words
    are taken out."""
    for pattern in (_STRING, _MATCHERS, _RANGE, _GROUPING, _VARIABLE, _NUMBER):
        expr = pattern.sub(" ", expr)
    return {word for word in _IDENTIFIER.findall(expr) if word.lower() not in PROMQL_WORDS}


def balanced(expr: str) -> bool:
    depth = {"(": 0, "{": 0, "[": 0}
    closing = {")": "(", "}": "{", "]": "["}
    for char in _STRING.sub('""', expr):
        if char in depth:
            depth[char] += 1
        elif char in closing:
            depth[closing[char]] -= 1
            if depth[closing[char]] < 0:
                return False
    return not any(depth.values())


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    return config


@pytest.fixture(scope="module")
def alert_rules() -> dict[str, dict[str, Any]]:
    groups = load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"]
    rules = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), f"an alert is defined twice: {names}"
    return {rule["alert"]: rule for rule in rules}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    model: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return model


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


# --- the PromQL name checker itself ---------------------------------------------------------


def test_metric_names_reads_only_the_metrics_of_an_expression() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, stage) (rate(copier_stage_seconds_bucket"
        '{stage="accept_to_placed", job=~"a|b"}[$__rate_interval]))) * 60'
        ' or absent(up{job="api"}) unless on (job) copier_ledger_lag_seconds offset 5m'
    )
    assert metric_names(expr) == {
        "copier_stage_seconds_bucket",
        "up",
        "copier_ledger_lag_seconds",
    }
    assert metric_names("sum(rate(copier_signals_totl[1m]))") == {"copier_signals_totl"}


# --- Prometheus -----------------------------------------------------------------------------


def test_prometheus_config_loads_the_alert_rules(prometheus: dict[str, Any]) -> None:
    assert prometheus["rule_files"] == ["alerts.yml"]
    for rule_file in prometheus["rule_files"]:
        assert (PROMETHEUS_DIR / rule_file).is_file()
    assert _DURATION.match(prometheus["global"]["scrape_interval"])
    assert _DURATION.match(prometheus["global"]["evaluation_interval"])


def scrape_hosts(job: dict[str, Any]) -> list[tuple[str, int]]:
    """(host, port) of every target a scrape job names, static or found by DNS."""
    hosts = []
    for static in job.get("static_configs", []):
        for target in static["targets"]:
            host, port = target.rsplit(":", 1)
            hosts.append((host, int(port)))
    for dns in job.get("dns_sd_configs", []):
        hosts.extend((name, int(dns["port"])) for name in dns["names"])
    return hosts


def test_every_copier_service_is_scraped_on_its_metrics_port(
    prometheus: dict[str, Any], compose: dict[str, Any]
) -> None:
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert set(jobs) >= JOBS
    services = compose["services"]
    for name in JOBS:
        hosts = scrape_hosts(jobs[name])
        assert hosts == [(name, hosts[0][1])], f"job {name} scrapes {hosts}"
        environment = services[name]["environment"]
        if name == "api":
            assert jobs[name].get("metrics_path", "/metrics") == "/metrics"
            assert hosts[0][1] == int(environment["API_PORT"])
        else:
            assert hosts[0][1] == int(environment["METRICS_PORT"]) == 9464


def test_every_scrape_target_is_a_compose_service(
    prometheus: dict[str, Any], compose: dict[str, Any]
) -> None:
    for job in prometheus["scrape_configs"]:
        for host, _port in scrape_hosts(job):
            # Prometheus scraping itself is the one target inside its own container.
            if job["job_name"] == "prometheus" and host == "localhost":
                continue
            assert host in compose["services"], f"{job['job_name']} scrapes unknown {host}"


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_each_alert_of_the_runbook_is_defined(
    name: str, alert_rules: dict[str, dict[str, Any]]
) -> None:
    anchor, metric = ALERTS[name]
    rule = alert_rules[name]
    expr = rule["expr"]
    assert balanced(expr), expr
    assert metric in metric_names(expr)
    assert rule["annotations"]["runbook_url"] == f"docs/OPERATIONS.md#{anchor}"


def test_every_alert_is_well_formed(alert_rules: dict[str, dict[str, Any]]) -> None:
    assert set(alert_rules) == set(ALERTS)
    for name, rule in alert_rules.items():
        expr = rule["expr"]
        assert isinstance(expr, str) and balanced(expr), name
        assert metric_names(expr) <= CONTRACT_SERIES, (name, metric_names(expr))
        assert re.search(r"(==|!=|<=|>=|<|>)", expr), f"{name} compares nothing"
        assert _DURATION.match(str(rule["for"])), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        assert annotations["runbook_url"].startswith("docs/OPERATIONS.md#"), name


# --- Grafana --------------------------------------------------------------------------------


def test_dashboard_is_a_grafana_model(dashboard: dict[str, Any]) -> None:
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"])
    assert dashboard["title"]
    assert dashboard["schemaVersion"] >= 36
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in dashboard["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]


def test_every_panel_queries_only_the_copier_metrics(dashboard: dict[str, Any]) -> None:
    datasource = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")
    uid = datasource["datasources"][0]["uid"]
    for panel in dashboard["panels"]:
        title = panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, title
        assert panel["fieldConfig"]["defaults"]["unit"], f"{title} has no unit"
        assert panel["targets"], f"{title} has no query"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), title
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, f"{title}: {target['expr']} reads no metric"
            assert names <= CONTRACT_SERIES, f"{title} reads {names - CONTRACT_SERIES}"
            assert balanced(target["expr"]), target["expr"]


def test_dashboard_shows_what_the_issue_asks(dashboard: dict[str, Any]) -> None:
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]

    def shown(pattern: str) -> bool:
        return any(re.search(pattern, expr) for expr in exprs)

    assert shown(r"rate\(copier_signals_total\[.*\* 60"), "signals per minute"
    assert shown(r"by \(broker, state\).*copier_orders_total"), "orders by state and broker"
    for quantile in ("0.5", "0.99"):
        assert shown(
            rf'histogram_quantile\({quantile},.*copier_stage_seconds_bucket\{{stage="accept_to_placed"'
        ), f"fan-out latency p{quantile}"
    assert shown(r"copier_consumer_pending_messages"), "consumer pending"
    assert shown(r"copier_consumer_ack_pending_messages"), "consumer ack pending"
    assert shown(r"by \(broker, code\).*copier_broker_errors_total"), "broker errors by code"
    assert shown(r"copier_ledger_lag_seconds"), "ledger lag"


def test_ledger_lag_panel_draws_the_alert_threshold(dashboard: dict[str, Any]) -> None:
    threshold = float(re.findall(r">\s*(\d+)", _alert_expr("CopierLedgerLagging"))[0])
    drawn = [
        panel
        for panel in dashboard["panels"]
        if panel["type"] == "timeseries"
        and any("copier_ledger_lag_seconds" in t["expr"] for t in panel["targets"])
        and panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] != "off"
    ]
    assert drawn, "no ledger lag graph draws its threshold"
    steps = drawn[0]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert threshold in [step["value"] for step in steps]


def _alert_expr(name: str) -> str:
    groups = load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"]
    return next(r["expr"] for g in groups for r in g["rules"] if r.get("alert") == name)


def test_grafana_provisioning_points_at_mounted_files(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    provisioning = host_path(grafana, "/etc/grafana/provisioning")
    assert provisioning == (GRAFANA_DIR / "provisioning").resolve()

    datasource = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"][0]
    url = re.fullmatch(r"http://([\w-]+):(\d+)", datasource["url"])
    assert url, datasource["url"]
    host, port = url.groups()
    assert host in compose["services"] and host in grafana["depends_on"]
    assert f"{port}:{port}" in compose["services"][host]["ports"]

    providers = load_yaml(provisioning / "dashboards" / "copier.yml")["providers"]
    for provider in providers:
        folder = host_path(grafana, provider["options"]["path"])
        assert folder is not None and folder.is_dir(), provider["options"]["path"]
        assert DASHBOARD.resolve() in [p.resolve() for p in folder.glob("*.json")]
    home = grafana["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert host_path(grafana, home) == DASHBOARD.resolve()


def test_prometheus_service_mounts_its_config(compose: dict[str, Any]) -> None:
    service = compose["services"]["prometheus"]
    for source in bind_mounts(service).values():
        assert source.exists(), source
    config_flag = re.search(r"--config\.file=(\S+)", service["command"])
    assert config_flag, "prometheus starts without --config.file"
    assert host_path(service, config_flag.group(1)) == (PROMETHEUS_DIR / "prometheus.yml")
    assert set(service["depends_on"]) >= JOBS
    for volume in compose["services"]["grafana"]["volumes"]:
        source = volume.split(":")[0]
        assert not source.startswith(".") or (ROOT / source).exists(), source


def test_every_copier_service_serves_metrics(compose: dict[str, Any]) -> None:
    for name in JOBS:
        environment = compose["services"][name]["environment"]
        assert str(environment["METRICS_PORT"]) == "9464", name
        assert environment.get("LOG_FORMAT", "text") in {"text", "json"}, name


# --- promtool, where installed ----------------------------------------------------------------

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not on PATH (Debian: apt-get install prometheus); "
    "the schema checks above still ran",
)


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> None:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_promtool_accepts_the_config_and_rules() -> None:
    promtool("check", "config", "prometheus.yml")
    promtool("check", "rules", "alerts.yml")


@needs_promtool
def test_alerts_fire_on_their_situations() -> None:
    promtool("test", "rules", "alerts.test.yml")


@needs_promtool
def test_promtool_parses_every_dashboard_query(dashboard: dict[str, Any], tmp_path: Path) -> None:
    # Each query as a recording rule, with Grafana's rate interval given a value, so that
    # Prometheus' own parser reads it.
    rules = [
        {"record": f"dashboard:panel{panel['id']}:{target['refId']}",
         "expr": target["expr"].replace("$__rate_interval", "1m")}
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]  # fmt: skip
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool("check", "rules", str(rule_file), cwd=tmp_path)
