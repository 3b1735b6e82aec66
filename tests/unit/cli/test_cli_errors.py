"""The CLI's one error path: whatever a command raises ends as one ``error: ...`` line on
stderr and a documented exit status, raised from any depth of command groups."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from cli.output import CliError, Commands, failure


def boom(exc: BaseException) -> typer.Typer:
    app = typer.Typer(cls=Commands, pretty_exceptions_enable=False)
    group = typer.Typer()

    @group.command("deep")
    def deep() -> None:
        raise exc

    @app.command("other")
    def other() -> None:  # a second command keeps "deep" under its group
        pass

    app.add_typer(group, name="group")
    return app


@pytest.mark.parametrize(
    ("exc", "line", "code"),
    [
        (CliError("not logged in"), "error: not logged in", 1),
        (CliError("--sizes wants whole numbers", 2), "error: --sizes wants whole numbers", 2),
        (ValueError("bad\nsecond line"), "error: ValueError: bad", 1),
        (RuntimeError(), "error: RuntimeError", 1),
        (KeyboardInterrupt(), "error: interrupted", 130),
    ],
)
def test_a_failure_is_one_line_on_stderr_with_its_exit_status(
    exc: BaseException, line: str, code: int
) -> None:
    result = CliRunner().invoke(boom(exc), ["group", "deep"])

    assert (result.exit_code, result.stderr.splitlines(), result.stdout) == (code, [line], "")
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_an_explicit_exit_status_and_usage_errors_are_the_frameworks() -> None:
    assert CliRunner().invoke(boom(typer.Exit(3)), ["group", "deep"]).exit_code == 3
    usage = CliRunner().invoke(boom(typer.BadParameter("no")), ["group", "deep"])
    assert usage.exit_code == 2 and "Usage:" in usage.stderr and "error:" not in usage.stderr


def test_the_failure_decision() -> None:
    assert failure(CliError("cancelled")) == ("cancelled", 1)
    assert failure(CliError("bad", 2)) == ("bad", 2)
    assert failure(OSError("disk full")) == ("OSError: disk full", 1)
    assert failure(KeyboardInterrupt()) == ("interrupted", 130)
