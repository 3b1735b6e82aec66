"""The process supervisor behind `copier up`: child processes started in order, watched,
restarted, stopped — whatever happened.

A child that dies after start-up, infrastructure included, is logged with its exit code or
signal and started again with the same command, ports and data dirs, after a delay that
doubles with each death in a row (:func:`restart_delay`) and starts over once the child has
stayed healthy for a while (:func:`deaths_in_a_row`); its restarts and last exit are in
the status table and in ``stack.json`` (:data:`STATE_FILE`), which `copier status` reads.
Those two decisions are pure functions; the :class:`Supervisor` only applies them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from apps.core import embedded
from apps.core.embedded import EmbeddedError, HealthCheck, ProcessSpec
from apps.core.nats import NatsSetupError, declare_topology
from apps.core.outage import backoff
from apps.core.settings import Settings

console = Console(highlight=False)

# Where a running supervisor keeps its children's state (in DATA_DIR).
STATE_FILE = "stack.json"
# Each child's log prefix colour, in start order.
COLORS = ["cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan"]
# How often every running child's health is checked.
HEALTH_CHECK_SECONDS = 1.0
# The first restart's delay, doubled for each further death in a row up to the cap: a
# child that dies at once on every start is not restarted in a tight loop.
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
# A child healthy this long has recovered: its next death counts as the first again.
STABLE_SECONDS = 60.0


def restart_delay(deaths: int) -> float:
    """Seconds to wait before restarting a child that has died ``deaths`` times in a row."""
    return backoff(deaths - 1, first=FIRST_RESTART_DELAY, cap=MAX_RESTART_DELAY)


def deaths_in_a_row(before: int, healthy_for: float) -> int:
    """The count of deaths in a row once a child dies again, after it was healthy for
    ``healthy_for`` seconds (0 if it never became healthy) since its last start."""
    return 1 if healthy_for >= STABLE_SECONDS else before + 1


def describe_exit(code: int) -> str:
    """An exit status as ops read it: asyncio reports death by signal N as code -N."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name} (exit code {code})"
    return f"exit code {code}"


def prefixed(name: str, color: str, line: str) -> str:
    """A child's output line as rich markup, after ``name |`` in ``color``: the line itself
    is printed verbatim (markup-escaped), so a JSON log line (``LOG_FORMAT=json``, passed
    to every child with the settings) is still one parseable object after the prefix."""
    return f"[{color}]{name:>12} |[/] {escape(line)}"


@dataclass
class Child:
    """One supervised process and what we know about it."""

    spec: ProcessSpec
    health: HealthCheck
    infra: bool
    color: str
    process: asyncio.subprocess.Process | None = None
    healthy: bool = False
    restarts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    pump: asyncio.Task[None] | None = None
    exited: asyncio.Task[int] | None = None  # wakes the supervisor when the process ends
    deaths: int = 0  # in a row (see deaths_in_a_row)
    healthy_since: float | None = None  # time.monotonic() of the last healthy check
    restart_at: float | None = None  # while dead: when it is started again
    metrics_url: str = ""  # where Prometheus scrapes it; empty: it serves no metrics

    @property
    def last_exit(self) -> str:
        return describe_exit(self.exit_codes[-1]) if self.exit_codes else ""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None


class Supervisor:
    """Starts children in order, watches them, stops them all — whatever happened."""

    def __init__(
        self,
        settings: Settings,
        children: list[Child],
        live: bool,
        *,
        declare_settings: Settings | None = None,
    ) -> None:
        self.settings = settings
        # Whom the JetStream topology is declared as, where, at how many replicas: the
        # cluster's admin user (nats/auth.conf) for `copier up --cluster`.
        self.declare_settings = declare_settings or settings
        self.children = children
        self.use_live = live
        self.stopping = asyncio.Event()
        # Set when a child exits or a stop is asked for: the watch loop looks at once.
        self._wake = asyncio.Event()
        self.started_at = time.monotonic()
        self._live: Live | None = None

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()

    # ---- output ------------------------------------------------------------------
    def table(self) -> Table:
        table = Table(title="Cloud Trade Copier — embedded stack", title_justify="left")
        for column in ("service", "pid", "address", "healthy", "restarts", "last exit"):
            table.add_column(column)
        for child in self.children:
            if child.healthy:
                status = "[green]yes[/]"
            elif child.running:
                status = "[yellow]starting[/]"
            elif child.restart_at is not None:
                status = "[red]down[/], restarting"
            else:
                status = "[red]down[/]" if child.process else "[dim]-[/]"
            table.add_row(
                f"[{child.color}]{child.spec.name}[/]",
                str(child.pid or "-"),
                child.spec.address or "-",
                status,
                str(child.restarts),
                child.last_exit or "-",
            )
        return table

    def say(self, message: str) -> None:
        (self._live.console if self._live else console).print(message, soft_wrap=True)

    def _refresh(self) -> None:
        if self._live:
            self._live.update(self.table())
        self._write_state()

    def _write_state(self) -> None:
        state = {
            "supervisor_pid": os.getpid(),
            "started": time.time(),
            "services": [
                {
                    "name": c.spec.name,
                    "pid": c.pid,
                    "address": c.spec.address,
                    "metrics_url": c.metrics_url or None,
                    "healthy": c.healthy,
                    "infra": c.infra,
                    "restarts": c.restarts,
                    "last_exit": c.last_exit or None,
                }
                for c in self.children
            ],
            "ready": all(c.healthy for c in self.children),
        }
        path = self.settings.data_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(path)

    async def _pump_logs(self, child: Child) -> None:
        assert child.process and child.process.stdout
        async for raw in child.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.say(prefixed(child.spec.name, child.color, line))

    # ---- lifecycle ---------------------------------------------------------------
    async def start_child(self, child: Child) -> None:
        process = child.process = await embedded.spawn(child.spec)
        child.healthy = False
        child.healthy_since = None
        child.pump = asyncio.create_task(self._pump_logs(child))
        child.exited = asyncio.create_task(process.wait())
        child.exited.add_done_callback(lambda _: self._wake.set())

    async def wait_healthy(self, group: list[Child], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(group)
        while pending:
            for child in list(pending):
                if not child.running:
                    code = child.process.returncode if child.process else None
                    raise EmbeddedError(
                        f"{child.spec.name} exited with code {code} while starting — "
                        f"see its log lines above"
                    )
                if await child.health():
                    child.healthy = True
                    child.healthy_since = time.monotonic()
                    pending.remove(child)
                    self._refresh()
            if pending and time.monotonic() > deadline:
                names = ", ".join(c.spec.name for c in pending)
                raise EmbeddedError(f"{names} not healthy after {timeout:.0f} s")
            if pending:
                await asyncio.sleep(0.1)

    async def run(self, startup_timeout: float) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self.stop)
        live_cm: contextlib.AbstractContextManager[Any] = (
            Live(self.table(), console=console, refresh_per_second=4, transient=False)
            if self.use_live
            else contextlib.nullcontext()
        )
        with live_cm as live:
            self._live = live if isinstance(live, Live) else None
            try:
                code = await self._run(startup_timeout)
            finally:
                await self.stop_all()
                self._refresh()
        (self.settings.data_dir / STATE_FILE).unlink(missing_ok=True)
        return code

    async def _run(self, startup_timeout: float) -> int:
        infra = [c for c in self.children if c.infra]
        services = [c for c in self.children if not c.infra]
        try:
            for child in infra:
                await self.start_child(child)
            await self.wait_healthy(infra, startup_timeout)
            infra_seconds = time.monotonic() - self.started_at
            done = await self._declare_topology()
            self.say(
                f"infrastructure healthy in {infra_seconds:.1f} s; JetStream: "
                + ", ".join(f"{k} {len(v)}" for k, v in done.items())
            )
            for child in services:
                await self.start_child(child)
            await self.wait_healthy(services, startup_timeout)
        except (EmbeddedError, NatsSetupError) as exc:
            self.say(f"[red]error:[/] {exc}")
            return 1
        total = time.monotonic() - self.started_at
        self.say(f"[green]all {len(self.children)} services healthy in {total:.1f} s[/]")
        if not self.use_live:
            console.print(self.table())
        self._refresh()
        await self._watch()
        return 0

    async def _declare_topology(self) -> dict[str, list[str]]:
        return await declare_topology(self.declare_settings, name="copier-up")

    async def _watch(self) -> None:
        """Until asked to stop: restart any child that died, health-check the others."""
        checks = asyncio.create_task(self._check_health())
        try:
            while not self.stopping.is_set():
                self._wake.clear()
                for child in self.children:
                    if child.running or self.stopping.is_set():
                        continue
                    if child.restart_at is None:
                        self._died(child)
                    elif time.monotonic() >= child.restart_at:
                        await self._restart(child)
                self._refresh()
                due = [c.restart_at for c in self.children if c.restart_at is not None]
                wait = max(0.0, min(due) - time.monotonic()) if due else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
        finally:
            checks.cancel()
            await asyncio.gather(checks, return_exceptions=True)

    async def _check_health(self) -> None:
        """Apart from the restarts, so that a slow check never delays one."""
        while True:
            await asyncio.gather(*(self._check(c) for c in self.children if c.running))
            self._refresh()
            await asyncio.sleep(HEALTH_CHECK_SECONDS)

    async def _check(self, child: Child) -> None:
        healthy = await child.health()
        if not child.running:  # it died meanwhile: _died accounts for it
            return
        if healthy and not child.healthy:
            child.healthy_since = time.monotonic()
            if child.restarts:
                self.say(f"[green]{child.spec.name} is healthy again[/]")
        elif child.healthy and not healthy:
            child.healthy_since = None
            self.say(f"[yellow]{child.spec.name} is not healthy[/]")
        child.healthy = healthy

    def _died(self, child: Child) -> None:
        assert child.process is not None and child.process.returncode is not None
        now = time.monotonic()
        healthy_for = now - child.healthy_since if child.healthy_since is not None else 0.0
        child.exit_codes.append(child.process.returncode)
        child.deaths = deaths_in_a_row(child.deaths, healthy_for)
        child.healthy, child.healthy_since = False, None
        wait = restart_delay(child.deaths)
        child.restart_at = now + wait
        # Whatever the child started itself (its own process group) goes with it, so
        # nothing holds its ports when it starts again.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        self.say(
            f"[red]{child.spec.name} died: {child.last_exit}[/]; "
            f"restarting in {wait:.1f} s ({child.deaths} in a row)"
        )

    async def _restart(self, child: Child) -> None:
        child.restart_at = None
        child.restarts += 1
        self.say(f"restarting {child.spec.name} (restart {child.restarts})")
        try:
            await self.start_child(child)
        except OSError as exc:  # counted as one more death in a row
            self.say(f"[red]{child.spec.name} could not be started: {exc}[/]")
            child.deaths += 1
            child.restart_at = time.monotonic() + restart_delay(child.deaths)

    async def stop_all(self) -> None:
        """Services first, then infrastructure; SIGTERM, then SIGKILL after a grace period."""
        for group in (
            [c for c in self.children if not c.infra],
            [c for c in self.children if c.infra],
        ):
            await asyncio.gather(*(self._stop(c) for c in reversed(group)))

    async def _stop(self, child: Child, grace: float = 10.0) -> None:
        process = child.process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                self.say(f"[red]{child.spec.name} ignored SIGTERM for {grace:.0f} s; killing[/]")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        # Whatever a child started itself (its own process group) goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if child.pump:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(child.pump, 2)
        child.healthy = False
