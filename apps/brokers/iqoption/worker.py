"""The IQ Option broker worker: ``python -m apps.brokers.iqoption.worker``.

Any number of instances share the durable consumer ``broker-iqoption``; the shared loop in
:mod:`apps.brokers.runner` does the work, this file only wires it to IQ Option.
"""

from __future__ import annotations

import asyncio

from apps.brokers.credentials import RedisCredentialStore
from apps.brokers.iqoption.adapter import PLACE_CHUNK, IQOptionAdapter
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
    nc = await connect_from(settings, f"copier-worker-iqoption-{settings.worker_id}")
    await ensure_topology(nc, topology, replicas=settings.nats_replicas)
    redis = connect_redis_from(settings)
    credentials = RedisCredentialStore(
        redis, topology, cipher_from_settings(settings), kind="iqoption"
    )
    # A third of the call budget each for the buy's reply and for reconciling a lost one,
    # leaving the rest for (re)connecting: the runner cancels at the full budget.
    budget = settings.broker_call_timeout / 3
    adapter = IQOptionAdapter(
        settings.iqoption_login_endpoint,
        settings.iqoption_ws_endpoint,
        reply_timeout=budget,
        reconcile_timeout=budget,
        account_concurrency=settings.iqoption_account_concurrency,
    )
    config = RunnerConfig(
        worker_id=settings.worker_id,
        concurrency=settings.worker_concurrency,
        call_timeout=settings.broker_call_timeout,
        lease_seconds=settings.worker_lease_seconds,
        process_lease_seconds=settings.worker_process_lease_seconds,
        finish_defer=settings.worker_finish_defer_seconds,
        # No batch buy: a chunk only groups the claims and finishes of its orders.
        place_chunk=PLACE_CHUNK,
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
    run_service("worker-iqoption", run)


if __name__ == "__main__":
    main()
