"""`copier sim iqoption` as its own process: it serves the login and the admin API on its
port, and a SIGTERM stops it cleanly with its journal written, so the next start accepts
the same password."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import httpx

from apps.core import embedded
from apps.core.brokers.iqoption import login_form
from tests.fixtures.waiting import wait_for

PROJECT_ROOT = Path(__file__).resolve().parents[3]


async def start(port: int, data_dir: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        "sim",
        "iqoption",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--time-scale",
        "60",
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )


async def test_the_cli_simulator_serves_and_keeps_its_accounts_across_a_restart(
    tmp_path: Path,
) -> None:
    port = embedded.free_port()
    base = f"http://127.0.0.1:{port}"
    process = await start(port, tmp_path)
    try:
        await wait_for(lambda: embedded.http_ok(f"{base}/health"), what="the simulator up")
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            reply = await http.post("/admin/accounts", json={"count": 1})
            (account,) = reply.json()["accounts"]
    finally:
        await embedded.stop_all([process])
    # uvicorn ends the process with the signal it stopped on, once it has stopped.
    assert process.returncode in (0, -signal.SIGTERM)

    process = await start(port, tmp_path)
    try:
        await wait_for(lambda: embedded.http_ok(f"{base}/health"), what="the simulator back")
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            login = await http.post(
                "/api/v2/login", data=login_form(account["email"], account["password"])
            )
        assert login.status_code == 200 and login.json()["data"]["ssid"]
    finally:
        await embedded.stop_all([process])
