"""``python -m benchmarks.fanout ARGS`` is ``copier bench ARGS``."""

from __future__ import annotations

import sys

from cli.main import app

app(["bench", *sys.argv[1:]], prog_name="copier")
