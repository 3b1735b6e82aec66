"""The Deriv broker worker: ``python -m apps.brokers.deriv.worker``.

Any number of instances share the durable consumer ``broker-deriv``; the shared loop in
:mod:`apps.brokers.runner` does the work, this file only wires it to Deriv.
"""

from __future__ import annotations

import asyncio

from apps.brokers.credentials import RedisCredentialStore
from apps.brokers.deriv.adapter import BATCH_MAX_ORDERS, DerivAdapter
from apps.brokers.runner import Runner
from apps.brokers.runner_config import RunnerConfig
from apps.core.credentials import cipher_from_settings
from apps.core.nats import close_nats, connect_from, ensure_topology
from apps.core.redis import connect_redis_from
from apps.core.service import run_service
from apps.core.settings import Settings
from apps.core.topology import Topology


async def run(settings: Settings, stop: asyncio.Event) -> None:
    topology = Topology(settings.namespace)
    nc = await connect_from(settings, f"copier-worker-deriv-{settings.worker_id}")
    await ensure_topology(nc, topology, replicas=settings.nats_replicas)
    redis = connect_redis_from(settings)
    credentials = RedisCredentialStore(
        redis, topology, cipher_from_settings(settings), kind="deriv"
    )
    # A third of the call budget each for the buy's reply and for reconciling a lost one,
    # leaving the rest for (re)connecting: the runner cancels at the full budget.
    budget = settings.broker_call_timeout / 3
    adapter = DerivAdapter(
        settings.deriv_endpoint,
        app_id=settings.deriv_app_id,
        reply_timeout=budget,
        reconcile_timeout=budget,
        watch_lead=settings.deriv_watch_lead_seconds,
    )
    config = RunnerConfig(
        worker_id=settings.worker_id,
        concurrency=settings.worker_concurrency,
        call_timeout=settings.broker_call_timeout,
        lease_seconds=settings.worker_lease_seconds,
        process_lease_seconds=settings.worker_process_lease_seconds,
        finish_defer=settings.worker_finish_defer_seconds,
        place_chunk=BATCH_MAX_ORDERS,  # one chunk's orders go to Deriv in one batch buy
        metrics_enabled=settings.metrics_enabled,
        wait_replicas=settings.redis_wait_replicas,
    )
    try:
        await Runner(nc.jetstream(), redis, topology, adapter, credentials, config).run(stop)
    finally:
        await adapter.close()
        await close_nats(nc)
        await redis.aclose()


def main() -> None:
    run_service("worker-deriv", run)


if __name__ == "__main__":
    main()
