"""`copier up` / `copier down` / `copier status`: the embedded stack."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the stack commands to the top-level app."""
