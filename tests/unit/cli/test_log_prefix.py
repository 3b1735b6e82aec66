"""`copier up` prefixes each child's line; a JSON log line stays one object after it."""

from __future__ import annotations

import io
import json

from rich.console import Console

from apps.core.settings import Settings
from cli.supervisor import prefixed


def test_a_json_line_parses_after_the_prefix_is_stripped() -> None:
    lines = [
        json.dumps({"event": r"a [b] \[c] \\[d] [/] [red]x[/red]", "exc": "x\n  y \\"}),
        json.dumps({"event": "x" * 500, "signal_id": "s1"}),
    ]
    out = io.StringIO()
    console = Console(file=out, highlight=False, width=80)
    for line in lines:
        console.print(prefixed("router", "cyan", line), soft_wrap=True)
    printed = out.getvalue().splitlines()
    assert [p.split(" | ", 1)[1] for p in printed] == lines
    assert [json.loads(p.split(" | ", 1)[1]) for p in printed] == [json.loads(x) for x in lines]


def test_copier_up_gives_its_children_the_log_format() -> None:
    assert Settings(log_format="json").as_env()["LOG_FORMAT"] == "json"
