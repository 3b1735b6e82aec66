"""Fixtures of the dashboard's browser tests: the live API serving frontend/dist on the
port its settings' origin names (the WebSocket's Origin check must name the page's own
origin), the pipeline's services, Chromium, and a screenshots folder per test."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from apps.core.embedded import free_port
from apps.core.settings import Settings
from tests.fixtures.dashboard import CHROMIUM, CHROMIUM_ARGS, ROOT, SHOTS, browser_missing
from tests.fixtures.iqoption_sim import IQOptionSim
from tests.fixtures.live_api import ApiServer
from tests.fixtures.pipeline import Pipeline


@pytest.fixture
def dashboard_port() -> int:
    return free_port()


@pytest.fixture
def api_settings(
    pipeline_settings: Settings, dashboard_port: int, iqoption_sim: IQOptionSim
) -> Settings:
    return replace(
        pipeline_settings,
        cors_origins=f"http://127.0.0.1:{dashboard_port}",
        iqoption_login_url=iqoption_sim.login_url,
        iqoption_ws_url=iqoption_sim.ws_url,
    )


@pytest.fixture
def api_server(api_settings: Settings, dashboard_port: int) -> Iterator[ApiServer]:
    server = ApiServer(api_settings)
    # Serve on the port the settings' origin names (uvicorn binds config.port at start).
    server.port = dashboard_port
    server.url = f"http://127.0.0.1:{dashboard_port}"
    server.ws_url = f"ws://127.0.0.1:{dashboard_port}/api/v1/ws"
    server.server.config.port = dashboard_port
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    missing = browser_missing()
    if missing:
        pytest.skip(missing)
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> Iterator[Path]:
    """A folder of its own for each test's screenshots, emptied before the test."""
    folder = SHOTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    yield folder
    with capsys.disabled():
        count = len(list(folder.glob("*.png")))
        print(f"\ndashboard screenshots: {folder.relative_to(ROOT)}/ ({count} files)")


@pytest.fixture
async def services(pipeline: Pipeline) -> Pipeline:
    """Router, ledger and Deriv worker, as `copier up` runs them."""
    for name in ("router", "ledger", "worker"):
        await pipeline.start(name)
    return pipeline
