"""Running the IQ Option simulator: inside a test's event loop, or as its own process.

One port serves IQ Option's HTTP login on ``/api/v2/login``, its WebSocket API on
``/echo/websocket`` and the admin HTTP API on ``/admin/...``
(:mod:`apps.brokers.simulation.server`), so one address serves the copier, tests, the
demo and the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from apps.brokers.iqoption.simulator.broker import LOGIN_PATH, IQOptionSimulator
from apps.brokers.iqoption.simulator.config import SimConfig, load_config
from apps.brokers.iqoption.simulator.journal import Journal
from apps.brokers.simulation import RunningSimulator, running, serve_until_stopped

DEFAULT_PORT = 8702


@contextlib.asynccontextmanager
async def running_simulator(
    config: SimConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    data_dir: Path | None = None,
) -> AsyncIterator[RunningSimulator[IQOptionSimulator]]:
    """Start the simulator inside the current event loop; port 0 picks a free port;
    its state is kept in ``data_dir`` if one is given."""
    config = config or SimConfig()
    simulator = IQOptionSimulator(config, _journal(data_dir))
    async with running(
        simulator, host=host, port=port, compression=config.ws_compression
    ) as serving:
        yield serving


def login_url(serving: RunningSimulator[IQOptionSimulator]) -> str:
    return f"{serving.admin_url}{LOGIN_PATH}"


def _journal(data_dir: Path | None) -> Journal | None:
    return None if data_dir is None else Journal(data_dir)


async def serve_forever(
    config: SimConfig, host: str, port: int, data_dir: Path | None = None
) -> None:
    """Run as its own process until SIGINT/SIGTERM (uvicorn handles the signals)."""
    simulator = IQOptionSimulator(config, _journal(data_dir))
    print(
        f"IQ Option simulator on ws://{host}:{port}{simulator.websocket_path} "
        f"(login: http://{host}:{port}{LOGIN_PATH}, admin: http://{host}:{port}/admin)"
    )
    await serve_until_stopped(simulator, host=host, port=port, compression=config.ws_compression)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="IQ Option simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--time-scale", type=float, default=None)
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="keep accounts and options here"
    )
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.time_scale is not None:
        config.time_scale = args.time_scale
    asyncio.run(serve_forever(config, args.host, args.port, args.data_dir))
