"""`copier`: one command line for the embedded stack, traders and ops."""

from __future__ import annotations

import typer

from cli import admin, auth, bench, manage, ops, signals, sim, stack
from cli.output import Commands

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
app.command("bench")(bench.bench)
auth.register(app)
signals.register(app)
manage.register(app)
ops.register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
