"""Garbage collection paced for a service that must answer within milliseconds.

CPython's cyclic collector stops the whole process while it walks every tracked object
of the generation it collects. A worker that follows 100,000 open contracts holds
millions of such objects, and a full (generation 2) collection on CPython's schedule
would stop its event loop for a large fraction of a second, every few seconds, in the
middle of the fan-out it is placing. The young generations stay as CPython runs them:
they are small and catch the short-lived cycles asyncio makes.
Generation 2 is collected here instead:

- once the process is quiet (it used less than ``IDLE_CPU_SHARE`` of a core over the last
  check) and enough has been promoted since the last full collection to be worth it;
- or unconditionally after ``FORCE_AFTER`` seconds, so memory held by old cycles stays
  bounded even in a process that is never quiet.

What start-up built (modules, settings, code) is frozen out of the collector's walks
altogether (:func:`gc.freeze`).
"""

from __future__ import annotations

import gc
import logging
import threading
import time

log = logging.getLogger("gc")

# CPython's gen-2 trigger counts gen-1 collections; this keeps it from ever firing.
_NEVER = 1_000_000
CHECK_EVERY = 2.0  # seconds between looks at the process
IDLE_CPU_SHARE = 0.10  # of one core: below this the process is quiet
MIN_PROMOTIONS = 10  # gen-1 collections since the last full one (CPython's own default)
FORCE_AFTER = 600.0  # seconds: the longest between two full collections


def start(check_every: float = CHECK_EVERY) -> threading.Thread:
    """Freeze what exists now, take generation 2 off CPython's automatic schedule and
    collect it from a pacing thread instead. Call once, when start-up is done.

    A thread rather than a task: it works the same under any event loop (uvicorn's,
    asyncio's), and a collection holds the interpreter lock either way."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _NEVER)
    thread = threading.Thread(target=_pace, args=(check_every,), name="gc-pacing", daemon=True)
    thread.start()
    return thread


def full_collection_due(*, cpu_share: float, promotions: int, since_full: float) -> bool:
    """Whether to run a full collection now (pure, for tests)."""
    if since_full >= FORCE_AFTER:
        return True
    return cpu_share < IDLE_CPU_SHARE and promotions >= MIN_PROMOTIONS


def _pace(check_every: float) -> None:
    last_full = last_check = time.monotonic()
    last_cpu = time.process_time()
    while True:
        time.sleep(check_every)
        now, cpu = time.monotonic(), time.process_time()
        share = (cpu - last_cpu) / max(now - last_check, 1e-6)
        last_check, last_cpu = now, cpu
        if full_collection_due(
            cpu_share=share, promotions=gc.get_count()[2], since_full=now - last_full
        ):
            started = time.perf_counter()
            found = gc.collect()
            last_full = last_check = time.monotonic()
            last_cpu = time.process_time()  # the collection's own CPU is not load
            log.debug(
                "full collection: %d unreachable, %.1f ms",
                found,
                (time.perf_counter() - started) * 1000,
            )
