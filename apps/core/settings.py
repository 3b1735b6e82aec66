"""One typed settings object per process, read from the environment once at start.

Defaults point at the embedded stack that `copier up` starts on this machine, so a
bare checkout works without any configuration; production overrides them with env vars.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints


class SettingsError(ValueError):
    """An environment variable has a value that cannot be used."""


def _default_data_dir() -> Path:
    return Path(os.environ.get("COPIER_DATA_DIR", Path.cwd() / "data")).resolve()


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything a process needs to know about its surroundings.

    Each field maps to the upper-case environment variable of the same name
    (``nats_url`` ← ``NATS_URL``); ``COPIER_`` prefixed names are accepted too.
    """

    # Infrastructure
    nats_url: str = "nats://127.0.0.1:4222"
    redis_url: str = "redis://127.0.0.1:6379/0"
    mongodb_uri: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongodb_database: str = "copier"
    # Prefix for every JetStream stream/consumer and Redis key, so tests (and several
    # deployments sharing servers) stay isolated. Empty in production.
    namespace: str = ""

    # This process's NATS user (nats/auth.conf names one per service); empty: connect
    # without credentials (the single-node dev stack, which listens on loopback only).
    nats_user: str = ""
    nats_password: str = ""
    # Replicas of every stream (its consumers follow the stream): 3 on a 3-node cluster.
    nats_replicas: int = 1
    # Valkey through Sentinel: "host:port,host:port,..." of the Sentinels; empty: REDIS_URL.
    redis_sentinels: str = ""
    redis_master_name: str = "copier"
    # Replicas that must hold an order marker before the broker is called (Valkey WAIT):
    # replication is asynchronous, and a failover must not lose a claim. 0: single node.
    redis_wait_replicas: int = 0

    # Embedded stack (`copier up`)
    data_dir: Path = field(default_factory=_default_data_dir)
    nats_port: int = 4222
    nats_monitor_port: int = 8222
    # `copier up` runs the production topology on this machine (`--cluster`): 3 NATS nodes
    # with a user per service, Valkey with 2 replicas and 3 Sentinels, 2 routers, 2 workers.
    cluster: bool = False
    # `copier up --cluster`: nats-1..3 take NATS_PORT, NATS_MONITOR_PORT and
    # NATS_CLUSTER_PORT + 0, 1, 2; the Valkey replica REDIS_PORT + 1, the Sentinels
    # REDIS_SENTINEL_PORT + 0, 1, 2.
    nats_cluster_port: int = 6222
    redis_sentinel_port: int = 26379
    redis_port: int = 6379
    mongodb_port: int = 27017
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    deriv_sim_port: int = 8701
    iqoption_sim_port: int = 8702
    # JSON configuration files of the simulators `copier up` starts (symbols, limits,
    # trading hours, time scale: apps/brokers/<kind>/simulator/config.py); empty: defaults.
    deriv_sim_config: str = ""
    iqoption_sim_config: str = ""
    # How long verifying a broker account may wait for the broker.
    broker_verify_timeout_seconds: float = 10.0

    # Auth: PEM-encoded Ed25519 keys. Empty means "generate and keep in data_dir" (dev only).
    jwt_private_key: str = ""
    jwt_public_key: str = ""
    jwt_key_id: str = "k1"
    jwt_issuer: str = "cloud-trade-copier"
    jwt_audience: str = "copier-api"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    # 32-byte AES-GCM key for broker credentials at rest, base64. Empty → generated in data_dir.
    credentials_key: str = ""
    # Stored next to each ciphertext so keys can rotate: old rows name the key that sealed them.
    credentials_key_id: str = "c1"
    # Login/register attempts per fixed 60 s window, counted in Redis so every API instance
    # shares one budget (per client address, and per account e-mail).
    auth_attempts_per_minute_per_ip: int = 30
    auth_attempts_per_minute_per_account: int = 10
    # Browser origins allowed by CORS and the WebSocket's Origin check, comma-separated.
    # Empty: the dashboard on this API's own port and the Vite dev server (allowed_origins).
    cors_origins: str = ""

    # Signal path
    signal_validity_seconds: float = 5.0
    # Orders per ORDERS message: 1 = one message per subscriber; larger groups amortise
    # JetStream's per-message cost and let a worker batch a whole group's accounts. A
    # group of 200 is about 100 KB, well inside ORDERS' 1 MB message limit (the fan-out
    # benchmark's comparison: benchmarks/README.md).
    order_group_size: int = 200
    # Channels with more subscriptions than this are fanned out in shards, each taken
    # by whichever router instance is free, so several routers share one big signal.
    router_shard_size: int = 20_000
    # Signals one router works on at once.
    router_concurrency: int = 4

    # Broker workers
    # Names this worker on in-flight markers and pending settlements (ops can tell who
    # was placing an order), and every process's JSON log lines ("instance"). Set it
    # explicitly when several workers share a host and pid namespace (containers).
    worker_id: str = field(default_factory=_default_worker_id)
    # Deriv worker processes `copier up` starts (they share the broker-deriv consumer).
    worker_processes: int = 1
    # Orders at a broker at once, per worker process: enough batches in flight that the
    # worker, Redis and the broker all stay busy instead of waiting on each other's round
    # trips.
    worker_concurrency: int = 1024
    # The longest one placement (connect + buy + reconciliation of a lost reply) may take
    # after the signal's valid_until; the runner cancels a call that runs longer, and
    # another worker may take over an in-flight order only after that. Above the broker's p99.
    broker_call_timeout: float = 30.0
    # An in-flight order marker is its worker's for this long unless renewed (every third
    # of it while the worker works on the order): how long a live worker that stopped
    # renewing keeps its orders. It also bounds how long the bookkeeping below may wait
    # (two thirds of it), long enough for a large fan-out's placements to all go first.
    worker_lease_seconds: float = 15.0
    # A worker process's own lease (apps.brokers.ownership), renewed every third of it: a
    # worker that died without a successor has its in-flight orders taken over this long
    # after its last renewal (one restarted under the same WORKER_ID takes them at once).
    # A worker that cannot renew it stops its broker calls before it lapses.
    worker_process_lease_seconds: float = 3.0
    # While a worker's burst of placements goes on, the bookkeeping of the orders already
    # placed (final markers, pending settlements, executions, acks) waits for it to end,
    # at most this long and only while their leases hold (until a third of a lease before
    # the first would lapse); providers see "placed" counts that much later. 0: finish
    # right away. See docs/burst-bookkeeping.md.
    worker_finish_defer_seconds: float = 10.0
    # Deriv API v3 endpoint; empty → the local simulator on deriv_sim_port.
    deriv_url: str = ""
    deriv_app_id: int = 1
    # An account's stream of open contracts is opened this long before its first contract
    # is due to end (1 s after it was placed at the earliest, and once the worker's burst
    # of placements is over, or 5 s before that contract ends if the burst goes on, 2 s
    # of waiting at least: brokers.bursts), so an hour's contract does not hold a stream
    # for an hour. A short lead opens a large fan-out's streams together with its first
    # settlements, where both compete for the CPU its last placements need; opening them
    # early spreads that cost. A time-scaled simulator ends contracts before their nominal
    # end: set it above their length (tests).
    deriv_watch_lead_seconds: float = 60.0
    # IQ Option's HTTP login and WebSocket; empty → the local simulator on
    # iqoption_sim_port (the real ones: https://auth.iqoption.com/api/v2/login and
    # wss://iqoption.com/echo/websocket).
    iqoption_login_url: str = ""
    iqoption_ws_url: str = ""
    # IQ Option worker processes `copier up` starts (they share the broker-iqoption
    # consumer).
    iqoption_worker_processes: int = 1
    # Purchases in flight on one IQ Option account at once: it has one socket and no
    # batch buy, so a fan-out's orders on one account queue behind each other.
    iqoption_account_concurrency: int = 4
    # How far (seconds) a broker's legal expiry may be from the signal's when the broker
    # cannot take the signal's exactly (IQ Option's whole minutes), unless the signal
    # states its own tolerance.
    expiry_tolerance_seconds: int = 30

    # Paid subscriptions. "stripe": a priced plan is subscribed through Stripe Checkout;
    # "off": every plan is subscribed directly (billing happens elsewhere, or not at all).
    payments: str = "stripe"
    # Stripe's API; empty → the local stand-in on stripe_sim_port (https://api.stripe.com).
    stripe_api_url: str = ""
    # Empty → generated and kept in data_dir (development only), shared with the stand-in.
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_sim_port: int = 8703
    # Where the stand-in delivers its webhooks; empty → this stack's API.
    stripe_sim_webhook_url: str = ""
    # How long a subscription whose payment failed keeps copying before it is paused.
    payment_grace_days: float = 3.0
    # How often the API pauses subscriptions whose grace period is over.
    payment_sweep_seconds: float = 60.0
    # The dashboard's address as the customer's browser reaches it (checkout return URLs);
    # empty → this API's own address.
    public_url: str = ""

    # `copier up`: the niceness of NATS, Redis and the API against the router, workers and
    # simulator at 0. Everything waits for the first two, a signal's accept for all three;
    # preempted in the middle of a command, Valkey holds every client up, so on a shared
    # machine it must win the CPU. Needs CAP_SYS_NICE (root, or RLIMIT_NICE); without it
    # they stay at 0.
    accept_path_nice: int = -5

    # Operations: Prometheus metrics collected and served (the API at /metrics on its own
    # port; the router, ledger and each worker on a metrics port of their own).
    metrics_enabled: bool = True
    # The metrics port of a router, ledger or worker process; `copier up` gives each of
    # its processes METRICS_PORT + an offset of its own (router 0, ledger 1, workers 2...).
    metrics_port: int = 9464

    log_level: str = "INFO"
    # "text" (for people) or "json" (one object per line, for log shippers): core.logging.
    log_format: str = "text"

    # Notifications (apps/notifier): e-mail over SMTP when SMTP_HOST is set (SMTP_STARTTLS
    # requires TLS on the connection), Telegram through the Bot API when
    # TELEGRAM_BOT_TOKEN is set; `copier up` points both Telegram settings at the local
    # stand-in (TELEGRAM_SIM_PORT) when no token is given.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_from: str = "Cloud Trade Copier <notifications@localhost>"
    smtp_starttls: bool = True
    telegram_api_url: str = "https://api.telegram.org"
    telegram_bot_token: str = field(default="", repr=False)
    telegram_sim_port: int = 8704
    # At most this many e-mails (and as many Telegram messages) per user and minute; the
    # rest of that minute's events go into one digest sent NOTIFY_OVERFLOW_DIGEST_SECONDS
    # after its period starts.
    notify_rate_per_minute: int = 10
    notify_overflow_digest_seconds: int = 300
    # "Subscription ending" is told this many days ahead, from a scan every
    # NOTIFY_SCAN_SECONDS.
    notify_ending_days: float = 3.0
    notify_scan_seconds: float = 3600.0
    # Outbox deliveries: sends at once per notifier, attempts before giving up, and how
    # long a claimed delivery stays its notifier's (above the send's own timeout).
    notify_concurrency: int = 8
    notify_max_attempts: int = 8
    notify_claim_seconds: float = 60.0
    # Sent or failed deliveries and flushed digest items are kept this many days: longer
    # than EXECUTIONS keeps a message (30 days), so a redelivered execution still finds its
    # delivery and is not told twice. In-app notifications are kept NOTIFY_INBOX_DAYS.
    notify_retention_days: float = 45.0
    notify_inbox_days: float = 90.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``env`` (default: the process environment) plus overrides."""
        source = os.environ if env is None else env
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = source.get(f.name.upper(), source.get(f"COPIER_{f.name.upper()}"))
            if raw is None:
                continue
            values[f.name] = _coerce(f.name, raw, hints[f.name])
        values.update(overrides)
        return cls(**values)

    @property
    def deriv_endpoint(self) -> str:
        return self.deriv_url or f"ws://127.0.0.1:{self.deriv_sim_port}/websockets/v3"

    @property
    def iqoption_login_endpoint(self) -> str:
        return self.iqoption_login_url or f"http://127.0.0.1:{self.iqoption_sim_port}/api/v2/login"

    @property
    def iqoption_ws_endpoint(self) -> str:
        return self.iqoption_ws_url or f"ws://127.0.0.1:{self.iqoption_sim_port}/echo/websocket"

    @property
    def stripe_api_endpoint(self) -> str:
        return self.stripe_api_url or f"http://127.0.0.1:{self.stripe_sim_port}"

    @property
    def public_endpoint(self) -> str:
        return (self.public_url or f"http://127.0.0.1:{self.api_port}").rstrip("/")

    @property
    def allowed_origins(self) -> list[str]:
        explicit = [o.strip() for o in self.cors_origins.split(",") if o.strip()]
        return explicit or local_dashboard_origins(self.api_port)

    def as_env(self) -> dict[str, str]:
        """The environment that reproduces these settings in a child process."""
        return {f.name.upper(): str(getattr(self, f.name)) for f in fields(self)}


def local_dashboard_origins(api_port: int) -> list[str]:
    """The dashboard served by the API itself, under either loopback name, and the Vite
    dev server, which proxies to the API from its own port."""
    return [
        f"http://127.0.0.1:{api_port}",
        f"http://localhost:{api_port}",
        "http://localhost:5173",
    ]


def _coerce(name: str, raw: str, kind: Any) -> Any:
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is bool:
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if kind is Path:
            return Path(raw).expanduser().resolve()
        return raw
    except ValueError as exc:
        raise SettingsError(f"{name.upper()}={raw!r} is not a valid {kind.__name__}") from exc
