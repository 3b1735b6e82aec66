"""The seed's fan-out design, rebuilt only to be measured against.

The signal service pushes every subscriber of a channel onto one Redis list and wakes the
broker workers (a Redis pub/sub message); each worker pops subscribers one at a time
(RPOP) and places that one order with a plain Deriv ``buy`` until the list is empty. No
markers, no executions, no groups: the cheapest honest version of that design, so the
ratio against the copier is not flattered by a strawman.

Workers run as ``python -m benchmarks.baseline_seed --redis URL --deriv WS --tasks N``
(one process per core in the benchmark); :func:`push_signal` is the signal service.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from typing import Any, cast

import websockets
from redis.asyncio import Redis

QUEUE = "bench-baseline:queue"
WAKE = "bench-baseline:wake"


async def push_signal(redis: Redis, signal_id: str, subscribers: list[dict[str, Any]]) -> None:
    """The seed's signal service: every subscriber onto the list, then wake the workers."""
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(0, len(subscribers), 1000):
            chunk = subscribers[i : i + 1000]
            pipe.lpush(
                QUEUE,
                *(
                    json.dumps({**s, "signal_id": signal_id, "order_id": f"{signal_id}-{i + j}"})
                    for j, s in enumerate(chunk)
                ),
            )
        pipe.publish(WAKE, signal_id)
        await pipe.execute()


class Connections:
    """One authorized Deriv connection per account, shared by the process's tasks."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.open: dict[str, tuple[Any, asyncio.Lock]] = {}
        self._req = 0

    def forget(self, token: str) -> None:
        self.open.pop(token, None)

    async def buy(self, job: dict[str, Any]) -> None:
        token = job["token"]
        if token not in self.open:
            ws = await websockets.connect(self.url, max_size=2**22)
            await ws.send(json.dumps({"authorize": token}))
            reply = json.loads(await ws.recv())
            if "error" in reply:
                raise RuntimeError(reply["error"])
            self.open.setdefault(token, (ws, asyncio.Lock()))
        ws, lock = self.open[token]
        async with lock:
            self._req += 1
            await ws.send(
                json.dumps(
                    {
                        "buy": "1",
                        "price": job["stake"],
                        "parameters": {
                            "contract_type": job["direction"],
                            "currency": "USD",
                            "symbol": job["symbol"],
                            "amount": job["stake"],
                            "basis": "stake",
                            "duration": job["duration"],
                            "duration_unit": "s",
                        },
                        "passthrough": {"signal_id": job["signal_id"], "order_id": job["order_id"]},
                        "req_id": self._req,
                    }
                )
            )
            # Subscription messages are never asked for, so the next frame is the reply.
            await ws.recv()


async def worker_task(redis: Redis, conns: Connections, wake: asyncio.Event) -> None:
    while True:
        await wake.wait()
        raw = await redis.rpop(QUEUE)
        if raw is None:
            wake.clear()
            continue
        job = json.loads(cast(bytes, raw))
        try:
            await conns.buy(job)
        except Exception:
            # A dropped connection (the simulator closes idle ones after 120 s): forget it
            # and queue the subscriber again, as the seed's worker retried on reconnect.
            conns.forget(job["token"])
            if job.get("tries", 0) < 3:
                await redis.rpush(QUEUE, json.dumps({**job, "tries": job.get("tries", 0) + 1}))


async def run_worker(redis_url: str, deriv_url: str, tasks: int) -> None:
    redis = Redis.from_url(redis_url, max_connections=tasks + 4)
    conns = Connections(deriv_url)
    wake = asyncio.Event()
    wake.set()  # drain whatever is already queued
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pubsub = redis.pubsub()
    await pubsub.subscribe(WAKE)

    async def listen() -> None:
        async for message in pubsub.listen():
            if message.get("type") == "message":
                wake.set()

    runners = [asyncio.create_task(worker_task(redis, conns, wake)) for _ in range(tasks)]
    runners.append(asyncio.create_task(listen()))
    print("baseline worker ready", flush=True)
    await stop.wait()
    for task in runners:
        task.cancel()
    await asyncio.gather(*runners, return_exceptions=True)
    for ws, _ in conns.open.values():
        with contextlib.suppress(Exception):
            await ws.close()
    await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--deriv", required=True)
    parser.add_argument("--tasks", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(run_worker(args.redis, args.deriv, args.tasks))


if __name__ == "__main__":
    main()
