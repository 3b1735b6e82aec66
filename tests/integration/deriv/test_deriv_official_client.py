"""The official python-deriv-api client works unchanged against the simulator.

It pins an old websockets (10.x), so it is installed into a throwaway virtual environment
made with the same interpreter, never into the project's environment.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.deriv_sim import SimHandle

SCRIPT = Path(__file__).with_name("official_client_script.py")


def _uv_command() -> list[str]:
    """uv as installed here: on PATH, or as a module of the interpreter the venv came from."""
    found = shutil.which("uv")
    if found:
        return [found]
    return [getattr(sys, "_base_executable", sys.executable), "-m", "uv"]


def _uv(*args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"UV_PYTHON_DOWNLOADS": "never"}
    return subprocess.run(
        [*_uv_command(), *args], capture_output=True, text=True, env=env, timeout=180
    )


@pytest.fixture(scope="module")
def official_client_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("python-deriv-api") / "venv"
    made = _uv("venv", "--python", sys.executable, str(venv))
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = _uv("pip", "install", "--python", str(python), "python-deriv-api")
    if installed.returncode != 0:
        unreachable = ("failed to fetch", "connect", "dns", "network", "timed out", "offline")
        if any(word in installed.stderr.lower() for word in unreachable):
            pytest.skip(f"package index unreachable: {installed.stderr.strip()[-300:]}")
        raise AssertionError(installed.stderr)
    return python


async def test_official_python_client_trades_against_the_simulator(
    sim: SimHandle, official_client_python: Path
) -> None:
    account = await sim.account(balance="100")
    await sim.faults(force_outcome="won")
    proc = await asyncio.create_subprocess_exec(
        str(official_client_python),
        str(SCRIPT),
        f"ws://127.0.0.1:{sim.running.port}",
        account.token,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)

    assert proc.returncode == 0, err.decode()[-2000:]
    [contract] = await sim.ledger()
    assert out.decode().strip() == f"contract {contract['contract_id']} won profit 9.5"
    assert contract["loginid"] == account.login
    assert contract["status"] == "won"
