"""`copier bench-channels`: how fast the public channel list answers with 100,000 orders
stored, on the embedded stack (`copier up` on free ports in a temporary DATA_DIR).

Seeding goes through the ledger's own code (:class:`apps.ledger.book.Book`, the object
the ledger service runs, minus the NATS consumer in front of it): every order is placed
and then settled, so MongoDB holds the ledger's `orders` documents and the `signal_stats`
and `channel_stats` counters exactly as the ledger writes them. Each channel's
`channel_stats.track` (the per-signal record the ledger keeps from the same executions)
is then written in the contract's shape, so the cards the list returns are full ones.
The list is measured once the stack is idle (the ledger service has nothing to do: the
seeded executions never went through NATS), N sequential requests on one kept-alive
HTTP/1.1 connection, as a browser sends them; medians and p95 per query, in
benchmarks/results/<date>-channels.json.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import httpx
import typer

from cli.output import CliError

if TYPE_CHECKING:
    from pymongo import UpdateOne

    from apps.core.messages import Execution

QUERIES = {
    "default (return_30d, page 1 of 20)": "",
    "sort=price&order=asc&page=3": "?sort=price&order=asc&page=3",
    "asset=EURUSD&min_win_rate=0.5&sort=win_rate_30d": (
        "?asset=EURUSD&min_win_rate=0.5&sort=win_rate_30d"
    ),
    "sort=subscribers&page_size=100": "?sort=subscribers&page_size=100",
}
SHM = Path("/dev/shm")
ASSETS = ["EURUSD", "GBPUSD", "USDJPY", "R_100", "R_50"]


@dataclass
class Options:
    orders: int = 100_000
    channels: int = 100
    subscribers: int = 100  # orders per signal
    requests: int = 200
    out: Path | None = None
    keep_data: bool = False
    data_parent: Path | None = None
    figures: dict[str, Any] = field(default_factory=dict)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def _track(rng: random.Random, signals: int, days: int) -> dict[str, Any]:
    """A `channel_stats.track` in the contract's shape (its numbers are made up: the list
    reads them, it never computes them)."""

    def window(n: int) -> dict[str, Any]:
        settled = n
        won = rng.randint(0, settled)
        return {
            "signals": n,
            "settled": settled,
            "won": won,
            "lost": settled - won,
            "win_rate": won / settled if settled else None,
            "return_on_stake": str(Decimal(rng.uniform(-0.5, 0.8)).quantize(Decimal("0.0001"))),
            "profit": str(Decimal(rng.uniform(-50, 80)).quantize(Decimal("0.01"))),
            "max_drawdown": str(Decimal(rng.uniform(0, 30)).quantize(Decimal("0.01"))),
            "avg_delay_ms": rng.uniform(50, 400),
            "p95_delay_ms": rng.uniform(400, 900),
        }

    return {
        "7d": window(signals // 8),
        "30d": window(signals // 2),
        "90d": window(signals),
        "all": window(signals),
    } | {"_days": days}


def final_order(placed: Execution, settled: Execution) -> UpdateOne:
    """An order's document once the ledger has booked its placement and its settlement:
    the ledger's own writes (:func:`order_write`) for both, as one upsert."""
    from pymongo import UpdateOne

    from apps.ledger.book import order_write

    fields: dict[str, Any] = {}
    for execution in (placed, settled):
        update = cast(Mapping[str, Any], order_write(execution)._doc)  # the update document
        fields |= update["$set"]
    return UpdateOne({"_id": placed.order_id}, {"$set": fields}, upsert=True)


async def _seed(stack: Any, opts: Options) -> dict[str, Any]:
    from apps.core.db import connect_db
    from apps.core.messages import Execution, ExecutionBatch, ExecutionState, Outcome
    from apps.core.redis import connect_redis_from
    from apps.core.topology import Topology
    from apps.ledger.book import MONGO_CHUNK, Book, Pending
    from benchmarks.fanout.seeding import auth, new_channel, provider

    rng = random.Random(28)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as client:
        who = await provider(client)
        channel_ids = [
            await new_channel(client, who, f"Bench channel {i}") for i in range(opts.channels)
        ]
        # Prices vary so that the price sort has work to do.
        for i, channel_id in enumerate(channel_ids):
            plan = {"price": str(i % 40), "period_days": 30}
            reply = await client.patch(
                f"/api/v1/channels/{channel_id}", json={"plan": plan}, headers=auth(who)
            )
            reply.raise_for_status()
    settings = stack.settings
    mongo, db = connect_db(settings.mongodb_uri, settings.mongodb_database)
    redis = connect_redis_from(settings)
    book = Book(redis, mongo[settings.mongodb_database], Topology(settings.namespace))
    orders = db.database["orders"]
    signals = max(1, opts.orders // opts.subscribers)
    now = time.time()
    t0 = time.monotonic()
    try:
        for s in range(signals):
            channel_id = channel_ids[s % len(channel_ids)]
            signal_id = f"bench-signal-{s:06d}"
            at = now - (signals - s) * 600
            placed, settled = [], []
            for k in range(opts.subscribers):
                common: dict[str, Any] = {
                    "order_id": f"{signal_id}.sub-{k:05d}",
                    "signal_id": signal_id,
                    "channel_id": channel_id,
                    "subscription_id": f"sub-{k:05d}",
                    "user_id": f"user-{k:05d}",
                    "broker_kind": "deriv",
                    "stake": Decimal(1),
                    "currency": "USD",
                }
                won = rng.random() < 0.55
                placed.append(
                    Execution(
                        **common,
                        state=ExecutionState.PLACED,
                        at=at,
                        contract_id=f"c{s}-{k}",
                        buy_price=Decimal(1),
                        payout=Decimal("1.9"),
                        latency_ms=rng.uniform(20, 400),
                    )
                )
                settled.append(
                    Execution(
                        **common,
                        state=ExecutionState.SETTLED,
                        at=at + 60,
                        outcome=Outcome.WON if won else Outcome.LOST,
                        profit=Decimal("0.9") if won else Decimal(-1),
                    )
                )
            events = [
                ExecutionBatch(signal_id=signal_id, channel_id=channel_id, executions=placed),
                ExecutionBatch(signal_id=signal_id, channel_id=channel_id, executions=settled),
            ]
            pending = await book.record(events)
            # Each order's final document in one upsert, in bulk as the ledger writes
            # (its own order_write fields, placed then settled merged): the stand-in's
            # cost per write would otherwise make seeding take hours, not minutes.
            writes = [final_order(p, e) for p, e in zip(placed, settled, strict=True)]
            for start in range(0, len(writes), MONGO_CHUNK):
                await orders.bulk_write(writes[start : start + MONGO_CHUNK], ordered=False)
            await book.persist(Pending(touched=pending.touched))
        ledger_s = time.monotonic() - t0
        stats = db.database["channel_stats"]
        for i, channel_id in enumerate(channel_ids):
            days = rng.randint(1, 400)
            track = _track(rng, signals // len(channel_ids), days)
            del track["_days"]
            await stats.update_one(
                {"_id": channel_id},
                {
                    "$set": {
                        "track": track,
                        "first_signal_at": now - days * 86400,
                        "last_signal_at": now,
                        "record_days": days,
                        "assets": rng.sample(ASSETS, 1 + i % 3),
                        "updated_at": now,
                    }
                },
            )
        stored = await orders.estimated_document_count()
    finally:
        await redis.aclose()
        mongo.close()
    return {"orders_stored": stored, "signals": signals, "ledger_seed_s": round(ledger_s, 1)}


async def _measure(api_url: str, requests: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        for name, query in QUERIES.items():
            for _ in range(5):  # warm the connection and the API's code paths
                (await client.get(f"/api/v1/channels{query}")).raise_for_status()
            times: list[float] = []
            total = 0
            for _ in range(requests):
                t = time.perf_counter()
                reply = await client.get(f"/api/v1/channels{query}")
                times.append((time.perf_counter() - t) * 1000)
                reply.raise_for_status()
                total = reply.json()["total"]
            results[name] = {
                "requests": requests,
                "median_ms": round(statistics.median(times), 2),
                "p95_ms": round(_pct(times, 95), 2),
                "max_ms": round(max(times), 2),
                "total": total,
            }
    return results


def run(opts: Options) -> Path:
    from benchmarks.fanout.report import RESULTS, console, machine
    from benchmarks.fanout.stack import start_stack

    console.print("starting the embedded stack")
    # The stand-in writes its SQLite WAL for every upsert: on a slow shared disk, seeding
    # 100,000 orders would take hours (hence /dev/shm by default); the list only reads.
    stack = start_stack({}, opts.data_parent)
    ok = False
    try:
        console.print(
            f"seeding {opts.orders:,} orders over {opts.channels} channels (the ledger's Book)"
        )
        seeded = asyncio.run(_seed(stack, opts))
        console.print(f"seeded: {seeded}")
        measured = asyncio.run(_measure(stack.api_url, opts.requests))
        ok = True
    finally:
        stack.down(keep_data=opts.keep_data or not ok)
    for name, figures in measured.items():
        console.print(f"GET /api/v1/channels {name}: {figures}")
    report = {
        "benchmark": "channels",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "orders": opts.orders,
            "channels": opts.channels,
            "orders_per_signal": opts.subscribers,
            "requests_per_query": opts.requests,
            "data_dir_in": str(opts.data_parent or tempfile.gettempdir()),
            "seeding": "Book.record (the ledger's script: Redis counts), one bulk upsert of "
            "each order's final document (order_write's fields), Book.persist (signal_stats, "
            "channel_stats); channel_stats.track written in the contract's shape",
        },
        "seeded": seeded,
        "target_median_ms": 50,
        "list": measured,
    }
    out = opts.out or RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-channels.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"results: {out}")
    return out


def bench_channels(
    orders: Annotated[int, typer.Option(min=1, help="Orders stored before measuring.")] = 100_000,
    channels: Annotated[int, typer.Option(min=1, help="Active channels listed.")] = 100,
    per_signal: Annotated[int, typer.Option(min=1, help="Orders per signal.")] = 100,
    requests: Annotated[int, typer.Option(min=1, help="Requests per query measured.")] = 200,
    out: Annotated[Path | None, typer.Option(help="JSON path (default results/<date>).")] = None,
    keep_data: Annotated[
        bool, typer.Option("--keep-data", help="Keep the started stack's DATA_DIR and logs.")
    ] = False,
    data_dir_in: Annotated[
        Path | None,
        typer.Option(
            help="Where the stack's DATA_DIR goes (default /dev/shm when there: the "
            "MongoDB stand-in's writes make seeding disk-bound)."
        ),
    ] = None,
) -> None:
    """The channel list's latency with ORDERS stored (median and p95 per query, JSON).

    Example: `copier bench-channels`, or `copier bench-channels --orders 2000 --requests 20`.
    """
    opts = Options(
        orders=orders,
        channels=channels,
        subscribers=per_signal,
        requests=requests,
        out=out,
        keep_data=keep_data,
        data_parent=data_dir_in or (SHM if SHM.is_dir() else None),
    )
    try:
        run(opts)
    except (RuntimeError, OSError, httpx.HTTPError) as exc:
        raise CliError(str(exc)) from exc
