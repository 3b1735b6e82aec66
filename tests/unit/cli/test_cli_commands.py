"""Commands from outside the CLI's package are mounted from entry points: `copier bench` is
there, and the CLI's code never imports the benchmark (the benchmark imports the CLI)."""

from __future__ import annotations

import ast
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from cli.main import COMMANDS_GROUP, app, load_command

CLI = Path(__file__).resolve().parents[3] / "cli"


def test_the_benchmark_command_is_mounted() -> None:
    names = [c.name for c in app.registered_commands]
    assert "bench" in names


def test_no_cli_module_imports_the_benchmarks() -> None:
    for path in CLI.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            assert not any(m.split(".")[0] == "benchmarks" for m in modules), path


def test_a_command_whose_package_is_not_installed_is_absent() -> None:
    entry = EntryPoint("gone", "not_installed_here.command:run", COMMANDS_GROUP)
    assert load_command(entry) is None


def test_a_broken_command_is_not_hidden() -> None:
    entry = EntryPoint("broken", "cli.output:no_such_command", COMMANDS_GROUP)
    with pytest.raises(AttributeError):
        load_command(entry)


def test_an_installed_command_loads() -> None:
    entry = EntryPoint("bench", "benchmarks.fanout.command:bench", COMMANDS_GROUP)
    command = load_command(entry)
    assert command is not None and callable(command)
