"""How every trader/ops command talks back: rich tables for people, ``--json`` for scripts,
and failures as one ``error: ...`` line on stderr with exit code 1 — never a traceback."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

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
    """A failure to report as one line; ``code`` is the process exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def console() -> Console:
    # Made per call so it writes to whatever sys.stdout is now (CliRunner swaps it).
    return Console(highlight=False, soft_wrap=False)


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


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


def command[**P](func: Callable[P, None]) -> Callable[P, None]:
    """Wrap a command so every failure ends as one line and a non-zero exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            func(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter, SystemExit):
            raise
        except CliError as exc:
            fail(exc.message, exc.code)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as exc:  # the promise is: never a traceback
            fail(friendly(exc))

    return wrapper
