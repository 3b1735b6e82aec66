"""`copier sim <broker>`: run a local broker simulator that speaks the real protocol."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)
