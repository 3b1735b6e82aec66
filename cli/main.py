"""`copier`: one command line for the embedded stack, traders and ops.

Commands that live outside the CLI's package (`copier bench`, the benchmark's own) are
mounted from the ``copier.commands`` entry points of the installed project
(pyproject.toml), so the CLI never imports them: the benchmark imports the CLI, never the
reverse. One whose package is not installed here (the service image ships no
benchmarks) is simply absent.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import typer

from cli import admin, auth, manage, ops, signals, sim, stack
from cli.output import Commands

COMMANDS_GROUP = "copier.commands"


def load_command(entry: EntryPoint) -> Callable[..., Any] | None:
    """The entry point's command function; ``None`` when its module is not installed here
    (any other import failure is raised: a broken command must not vanish quietly)."""
    try:
        command: Callable[..., Any] = entry.load()
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if entry.module == missing or entry.module.startswith(f"{missing}."):
            return None
        raise
    return command


def mount_installed_commands(app: typer.Typer) -> None:
    for entry in entry_points(group=COMMANDS_GROUP):
        command = load_command(entry)
        if command is not None:
            app.command(entry.name)(command)


app = typer.Typer(
    name="copier",
    cls=Commands,
    help="Cloud Trade Copier: run the stack, send signals, inspect the flow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack.register(app)
admin.register(app)
app.add_typer(sim.app, name="sim", help="Run a local broker simulator.")
mount_installed_commands(app)
auth.register(app)
signals.register(app)
manage.register(app)
ops.register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
