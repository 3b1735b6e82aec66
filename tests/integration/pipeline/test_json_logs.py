"""JSON logs along a signal's path, with real processes at DEBUG: every line of the API,
router, worker and ledger is one JSON object, one filter on the signal's id finds it in
all four, and no password, access or refresh token, or broker token is in any line."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
from nats.aio.client import Client as NATS

from apps.core.embedded import PROJECT_ROOT, free_port
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import PASSWORD, Api, User
from tests.fixtures.pipeline import Pipeline
from tests.fixtures.waiting import wait_for

SIGNAL = {"asset": "R_100", "direction": "CALL", "expiry_seconds": 15, "stake": "1"}
JSON_DEBUG = {"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}


async def start_api(pipeline: Pipeline, port: int) -> None:
    log = (pipeline.log_dir / "api.log").open("ab")
    try:
        pipeline.processes["api"] = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "apps.api.main",
            env=pipeline.env("api", API_HOST="127.0.0.1", API_PORT=str(port), **JSON_DEBUG),
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=log,
        )
    finally:
        log.close()


def parsed(pipeline: Pipeline, name: str) -> list[dict[str, Any]]:
    entries = []
    for line in pipeline.log(name).splitlines():
        assert line.strip(), f"{name}: an empty line"
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise AssertionError(f"{name}: not one JSON object: {line[:300]!r}") from exc
    return entries


async def test_one_filter_follows_a_signal_through_json_logs_without_a_secret(
    pipeline: Pipeline, sim: SimHandle, nc: NATS
) -> None:
    port = free_port()
    await start_api(pipeline, port)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

        async def up() -> bool:
            try:
                return (await client.get("/health")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_for(up, timeout=120, what="the API to start")
        http = Api(client)
        first = await http.user("provider", "provider")
        refreshed = await http.ok(
            "POST", "/api/v1/auth/refresh", json={"refresh_token": first.refresh_token}
        )
        provider = User(
            first.id, first.email, refreshed["access_token"], refreshed["refresh_token"]
        )
        channel = await http.channel(provider)
        subscriber = await http.user("subscriber", "sub")
        sim_account = await sim.account(balance="500")
        account = await http.ok(
            "POST",
            "/api/v1/broker-accounts",
            subscriber,
            json={"kind": "deriv", "label": "sim", "credentials": {"token": sim_account.token}},
        )
        await http.ok("POST", f"/api/v1/broker-accounts/{account['id']}/verify", subscriber)
        await http.ok(
            "POST",
            f"/api/v1/channels/{channel}/subscriptions",
            subscriber,
            json={
                "broker_account_id": account["id"],
                "stake_mode": "fixed",
                "stake": "1",
                "max_stake": "5",
            },
        )
        for name in ("router", "ledger", "worker"):
            await pipeline.start(name, **JSON_DEBUG)
        await pipeline.ready(nc)

        sent = await http.ok("POST", f"/api/v1/channels/{channel}/signals", provider, json=SIGNAL)
        signal_id = sent["signal_id"]

        async def recorded() -> bool:
            stats = await http.ok("GET", f"/api/v1/signals/{signal_id}", provider)
            return bool(stats["counts"]["placed"] == 1)

        await wait_for(recorded, timeout=90, what="the order to be placed and recorded")
        await http.ok("POST", "/api/v1/auth/logout", provider)
    await pipeline.stop_all()  # every line written and flushed

    secrets = {
        "password": PASSWORD,
        "first access token": first.access_token,
        "first refresh token": first.refresh_token,
        "refreshed access token": provider.access_token,
        "refreshed refresh token": provider.refresh_token,
        "subscriber access token": subscriber.access_token,
        "subscriber refresh token": subscriber.refresh_token,
        "broker token": sim_account.token,
    }
    followed = {}
    for name in ("api", "router", "worker", "ledger"):
        text = pipeline.log(name)
        for what, secret in secrets.items():
            assert secret not in text, f"{name} logged the {what}"
        entries = parsed(pipeline, name)
        assert all({"time", "level", "service", "logger", "event"} <= e.keys() for e in entries)
        followed[name] = [e["event"] for e in entries if e.get("signal_id") == signal_id]
    assert all(followed.values()), followed
    assert any("accepted" in event for event in followed["api"])
    assert any("1 placed" in event for event in followed["worker"])
    assert any("executions recorded" in event for event in followed["ledger"])
