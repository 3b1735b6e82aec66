"""`copier bench`: the fan-out benchmark from the command line.

The CLI mounts this command through the ``copier.commands`` entry point (pyproject.toml),
so the CLI never imports the benchmark; the benchmark itself is imported only when the
command runs, which keeps `copier --help` fast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.output import CliError


def _ints(raw: str, what: str) -> list[int]:
    try:
        values = [int(v.replace("_", "")) for v in raw.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 0 for v in values):
        raise CliError(f"--{what} wants comma-separated whole numbers, not {raw!r}", 2)
    return values


def bench(
    sizes: Annotated[str, typer.Option(help="Subscribers per signal, comma-separated.")] = (
        "1000,10000,100000"
    ),
    latency: Annotated[
        str, typer.Option(help="Simulated broker latency (ms), comma-separated.")
    ] = ("0,50"),
    runs: Annotated[int, typer.Option(min=1, help="Runs per size (medians are reported).")] = 5,
    accounts_ratio: Annotated[
        int, typer.Option(min=1, help="Subscribers per broker account (M = N / this).")
    ] = 20,
    smoke: Annotated[
        bool, typer.Option("--smoke", help="N=200, one run, 0 ms, no scale-out (CI).")
    ] = False,
    baseline: Annotated[bool, typer.Option(help="Also run the seed's design.")] = True,
    scale_out: Annotated[bool, typer.Option(help="1/2 routers x 1/2 workers at N=10,000.")] = True,
    out: Annotated[Path | None, typer.Option(help="JSON path (default results/<date>).")] = None,
    setting: Annotated[
        list[str] | None,
        typer.Option("--set", help="KEY=VALUE setting for the benchmark's stack (repeatable)."),
    ] = None,
    use_running: Annotated[
        str | None,
        typer.Option(help="API URL of a running stack (its env: DATA_DIR and ports)."),
    ] = None,
    keep_data: Annotated[
        bool,
        typer.Option(
            "--keep-data",
            help="Keep the started stack's DATA_DIR and logs (kept anyway if the run fails).",
        ),
    ] = False,
    iqoption_share: Annotated[
        int,
        typer.Option(
            min=0,
            max=100,
            help="Percent of the subscribers on IQ Option accounts, the rest on Deriv "
            "(the signal is then EURUSD, 120 s, which both take).",
        ),
    ] = 0,
    vary: Annotated[
        list[str] | None,
        typer.Option(
            help="KEY=V1,V2,...: run everything once per value, each on a fresh stack "
            "(e.g. ORDER_GROUP_SIZE=1,50,200); repeated, the settings change together "
            "(the i-th values of every --vary make the i-th stack)."
        ),
    ] = None,
) -> None:
    """Fan-out benchmark: N subscriptions, one signal, ledger-timed placements, vs the seed.

    Example: `copier bench --sizes 1000,10000 --latency 0 --runs 5`, or `copier bench --smoke`.
    """
    from benchmarks.fanout.run import Options, run

    if smoke:
        opts = Options(sizes=[200], latencies=[0], runs=1, scale_out=False)
    else:
        opts = Options(
            sizes=_ints(sizes, "sizes"),
            latencies=_ints(latency, "latency"),
            runs=runs,
            scale_out=scale_out,
        )
    opts.accounts_ratio = accounts_ratio
    opts.baseline = baseline
    opts.out = out
    opts.use_running = use_running
    opts.keep_data = keep_data
    opts.iqoption_share = iqoption_share
    for item in setting or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--set wants KEY=VALUE, not {item!r}", 2)
        opts.settings_env[key.upper()] = value
    if vary:
        varied: dict[str, list[str]] = {}
        for item in vary:
            key, sep, values = item.partition("=")
            choices = [v.strip() for v in values.split(",") if v.strip()]
            if not sep or not key or not choices:
                raise CliError(f"--vary wants KEY=V1,V2,..., not {item!r}", 2)
            varied[key.upper()] = choices
        if len({len(choices) for choices in varied.values()}) > 1:
            raise CliError("every --vary needs as many values as the others", 2)
        if use_running:
            raise CliError("--vary starts its own stacks; drop --use-running", 2)
        opts.vary = varied
        opts.baseline = False
        opts.scale_out = False
    try:
        run(opts)
    except (RuntimeError, OSError) as exc:  # the benchmark's own failures, said as they are
        raise CliError(str(exc)) from exc
