"""The seed's fan-out design, rebuilt only to be measured against.

The signal service pushes every subscriber of a channel onto one Redis list and wakes the
broker workers (a Redis pub/sub message); each worker pops subscribers one at a time
(RPOP) and places that one order with a plain Deriv ``buy``, or for an IQ Option
subscriber a plain ``open-option`` on the account's logged-in socket, until the list is
empty. No markers, no executions, no groups: the cheapest honest version of that design,
so the ratio against the copier is not flattered by a strawman.

Workers run as ``python -m benchmarks.baseline_seed --redis URL --deriv WS --tasks N
[--iqoption-login URL --iqoption-ws WS]`` (one process per core in the benchmark);
:func:`push_signal` is the signal service.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from typing import Any, cast

import httpx
import websockets
from redis.asyncio import Redis

from apps.core.brokers.iqoption import (
    ACTIVE_IDS,
    BALANCE_TYPES,
    LegalExpiry,
    choose_expiry,
)

QUEUE = "bench-baseline:queue"
WAKE = "bench-baseline:wake"


async def push_signal(redis: Redis, signal_id: str, subscribers: list[dict[str, Any]]) -> None:
    """The seed's signal service: every subscriber onto the list, then wake the workers."""
    created_at = time.time()
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(0, len(subscribers), 1000):
            chunk = subscribers[i : i + 1000]
            pipe.lpush(
                QUEUE,
                *(
                    json.dumps(
                        {
                            **s,
                            "signal_id": signal_id,
                            "order_id": f"{signal_id}-{i + j}",
                            "created_at": created_at,
                        }
                    )
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


class IQOptionConnections:
    """One logged-in IQ Option socket per account, shared by the process's tasks; a reader
    per socket answers heartbeats and hands each ``option`` reply to its buyer."""

    def __init__(self, login_url: str, ws_url: str) -> None:
        self.login_url = login_url
        self.ws_url = ws_url
        self.open: dict[str, tuple[Any, int, asyncio.Task[None]]] = {}
        self.opening: dict[str, asyncio.Lock] = {}
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.http = httpx.AsyncClient(timeout=30)

    def forget(self, email: str) -> None:
        opened = self.open.pop(email, None)
        if opened is not None:
            opened[2].cancel()

    async def _connect(self, job: dict[str, Any]) -> tuple[Any, int, asyncio.Task[None]]:
        email = job["email"]
        async with self.opening.setdefault(email, asyncio.Lock()):
            if email in self.open:
                return self.open[email]
            login = await self.http.post(
                self.login_url, data={"identifier": email, "password": job["password"]}
            )
            login.raise_for_status()
            ssid = login.json()["data"]["ssid"]
            ws = await websockets.connect(self.ws_url, max_size=2**22)
            await ws.send(json.dumps({"name": "ssid", "msg": ssid, "request_id": ""}))
            while True:
                message = json.loads(await ws.recv())
                if message.get("name") == "profile":
                    break
            if not message["msg"]:
                raise RuntimeError("the simulator refused the ssid")
            practice = BALANCE_TYPES["practice"]
            balance_id = next(b["id"] for b in message["msg"]["balances"] if b["type"] == practice)
            reader = asyncio.create_task(self._read(ws))
            self.open[email] = (ws, int(balance_id), reader)
            return self.open[email]

    async def _read(self, ws: Any) -> None:
        async for raw in ws:
            message = json.loads(raw)
            name = message.get("name")
            if name == "heartbeat":
                answer = {"heartbeatTime": message["msg"], "userTime": int(time.time() * 1000)}
                await ws.send(json.dumps({"name": "heartbeat", "request_id": "", "msg": answer}))
            elif name == "option":
                waiter = self.waiting.pop(str(message.get("request_id")), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)
        for waiter in self.waiting.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError("socket closed"))

    async def buy(self, job: dict[str, Any]) -> None:
        ws, balance_id, _ = await self._connect(job)
        expiry = choose_expiry(job["created_at"], int(job["duration"]), 30)
        if not isinstance(expiry, LegalExpiry):
            return  # the seed would not have known better; nothing is bought
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[job["order_id"]] = reply
        body = {
            "user_balance_id": balance_id,
            "active_id": ACTIVE_IDS[job["symbol"]],
            "option_type_id": expiry.option_type_id,
            "direction": job["direction"].lower(),
            "expired": expiry.at,
            "price": float(job["stake"]),
        }
        await ws.send(
            json.dumps(
                {
                    "name": "sendMessage",
                    "request_id": job["order_id"],
                    "msg": {"name": "binary-options.open-option", "version": "1.0", "body": body},
                }
            )
        )
        await asyncio.wait_for(reply, 30)


class Brokers:
    """The worker's connections to each broker kind a job may name."""

    def __init__(self, deriv: Connections, iqoption: IQOptionConnections | None) -> None:
        self.deriv = deriv
        self.iqoption = iqoption

    async def buy(self, job: dict[str, Any]) -> None:
        if job.get("kind") == "iqoption":
            assert self.iqoption is not None, "IQ Option jobs need --iqoption-login/-ws"
            await self.iqoption.buy(job)
        else:
            await self.deriv.buy(job)

    def forget(self, job: dict[str, Any]) -> None:
        if job.get("kind") == "iqoption" and self.iqoption is not None:
            self.iqoption.forget(job["email"])
        else:
            self.deriv.forget(job["token"])


async def worker_task(redis: Redis, conns: Brokers, wake: asyncio.Event) -> None:
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
            conns.forget(job)
            if job.get("tries", 0) < 3:
                await redis.rpush(QUEUE, json.dumps({**job, "tries": job.get("tries", 0) + 1}))


async def run_worker(
    redis_url: str, deriv_url: str, tasks: int, iq_login: str = "", iq_ws: str = ""
) -> None:
    redis = Redis.from_url(redis_url, max_connections=tasks + 4)
    deriv = Connections(deriv_url)
    conns = Brokers(deriv, IQOptionConnections(iq_login, iq_ws) if iq_login else None)
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
    for ws, _ in deriv.open.values():
        with contextlib.suppress(Exception):
            await ws.close()
    if conns.iqoption is not None:
        for ws, _, reader in conns.iqoption.open.values():
            reader.cancel()
            with contextlib.suppress(Exception):
                await ws.close()
        await conns.iqoption.http.aclose()
    await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--deriv", required=True)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--iqoption-login", default="")
    parser.add_argument("--iqoption-ws", default="")
    args = parser.parse_args()
    asyncio.run(
        run_worker(args.redis, args.deriv, args.tasks, args.iqoption_login, args.iqoption_ws)
    )


if __name__ == "__main__":
    main()
