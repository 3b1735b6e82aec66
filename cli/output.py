"""How every command talks back: rich tables for people, ``--json`` for scripts, and
failures as one ``error: ...`` line on stderr — never a traceback.

A command fails by raising :class:`CliError` (or by letting any exception escape); the
root command group (:class:`Commands`, the `copier` app's) is the one place that turns it
into that line and the exit status (:func:`failure`):

- 0: done;
- 1: the command failed (``CliError``'s default; any unplanned exception, as its type and
  first line); `copier status`: the stack is not running or not healthy;
- 2: bad input or configuration found by a command (``CliError(..., 2)``), and the
  command-line parser's own usage errors (shown by click, with the usage line);
- 130: interrupted (Ctrl-C);
- `copier up`: the supervisor's own status, or that of a detached stack that exited.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer._click import Context
from typer.core import TyperGroup
from typer.exceptions import TyperException

ApiOption = Annotated[
    str | None,
    typer.Option(
        "--api",
        envvar="COPIER_API",
        help="API base URL (default: the last one logged in to, else http://127.0.0.1:8000).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


class CliError(Exception):
    """A failure to report as one line; ``code`` is the process exit status (1 unless
    the module's list says otherwise)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def console() -> Console:
    # Made per call so it writes to whatever sys.stdout is now (CliRunner swaps it).
    return Console(highlight=False, soft_wrap=False)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, default=_default))


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    grid = Table(title=title, title_justify="left")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    return grid


def when(epoch: float | None) -> str:
    """Epoch seconds as a UTC time with milliseconds (what the timeline needs)."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def friendly(exc: BaseException) -> str:
    """The one line for an exception nobody planned for: its type and text, no trace."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def failure(exc: BaseException) -> tuple[str, int]:
    """The line and the exit status a command's failure is reported with."""
    match exc:
        case CliError(message=message, code=code):
            return message, code
        case KeyboardInterrupt():
            return "interrupted", 130
        case _:
            return friendly(exc), 1


# What the command-line framework reports itself: an explicit exit status, an abort, and
# its usage errors (bad or missing options: TyperException), shown with the usage line.
PASSED_THROUGH = (typer.Exit, typer.Abort, TyperException, SystemExit)


class Commands(TyperGroup):
    """The root command group: every failure of any command below it ends here."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except PASSED_THROUGH:
            raise
        except (Exception, KeyboardInterrupt) as exc:  # the promise is: never a traceback
            message, code = failure(exc)
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(code) from None
