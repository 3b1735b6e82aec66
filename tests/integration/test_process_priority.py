"""Niceness of the stack's children holds against the other children, too.

Each child runs in its own session; on Linux with autogroups every session is its own
scheduling group, so a nice that only the task carries would weigh nothing against the
pipeline's processes. The group must be lowered with it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from apps.core import embedded

AUTOGROUPS = Path("/proc/sys/kernel/sched_autogroup_enabled")
# A negative nice needs CAP_SYS_NICE (or RLIMIT_NICE); without, the child stays at 0.
MAY_RUN_AHEAD = subprocess.run([sys.executable, "-c", "import os; os.nice(-1)"]).returncode == 0


def _autogroup_nice(pid: int) -> int:
    # "/autogroup-1509 nice 10"
    return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])


@pytest.mark.skipif(
    not AUTOGROUPS.exists() or AUTOGROUPS.read_text().strip() != "1",
    reason="the kernel does not group sessions for scheduling",
)
@pytest.mark.parametrize(
    ("nice", "background", "expected"),
    [(0, False, 0), (7, False, 7), (0, True, 19), (-3, False, -3 if MAY_RUN_AHEAD else 0)],
)
async def test_a_nicer_child_lowers_its_scheduling_group(
    nice: int, background: bool, expected: int
) -> None:
    spec = embedded.ProcessSpec(
        "sleeper",
        [sys.executable, "-c", "import time; time.sleep(30)"],
        nice=nice,
        background=background,
    )
    process = await embedded.spawn(spec)
    try:
        assert os.getsid(process.pid) == process.pid  # its own session, so its own group
        assert _autogroup_nice(process.pid) == expected
        if background:
            assert os.sched_getscheduler(process.pid) == os.SCHED_IDLE
        else:
            assert os.getpriority(os.PRIO_PROCESS, process.pid) == expected
    finally:
        process.kill()
        await asyncio.wait_for(process.wait(), 10)
