"""The CLI as a trader runs it: typer's CliRunner against the live API (and NATS for ops),
with its own config directory per test. Invocations run in a worker thread because each
command calls asyncio.run, which cannot nest inside the test's event loop."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from apps.core.settings import Settings
from cli.main import app
from tests.fixtures.live_api import PASSWORD, ApiServer, User


@dataclass
class Cli:
    env: dict[str, str]
    config_dir: Path

    def invoke(self, *args: str, input: str | None = None, **env: str) -> Result:
        runner = CliRunner()
        return runner.invoke(app, list(args), input=input, env={**self.env, **env})

    async def run(self, *args: str, input: str | None = None, **env: str) -> Result:
        result = await asyncio.to_thread(self.invoke, *args, input=input, **env)
        assert "Traceback" not in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            repr(result.exception),
            result.output,
        )
        return result

    async def ok(self, *args: str, input: str | None = None, **env: str) -> Result:
        result = await self.run(*args, input=input, **env)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    async def json(self, *args: str, **env: str) -> Any:
        return json.loads((await self.ok(*args, "--json", **env)).stdout)

    async def fails(self, *args: str, input: str | None = None, **env: str) -> str:
        """The one error line of a failed command (exit 1, nothing but `error: ...`)."""
        result = await self.run(*args, input=input, **env)
        assert result.exit_code == 1, (args, result.exit_code, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        return lines[0].removeprefix("error: ")

    async def login(self, user: User) -> None:
        await self.ok("login", "--email", user.email, "--password", PASSWORD)


@pytest.fixture
def cli(api_server: ApiServer, settings: Settings, tmp_path: Path) -> Cli:
    config_dir = tmp_path / "copier-config"
    return Cli(
        env={
            "COPIER_CONFIG_DIR": str(config_dir),
            "COPIER_API": api_server.url,
            "NATS_URL": settings.nats_url,
            "NAMESPACE": settings.namespace,
            "COLUMNS": "200",
        },
        config_dir=config_dir,
    )
