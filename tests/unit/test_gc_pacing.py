"""Full collections wait for a quiet moment, but never longer than FORCE_AFTER."""

from __future__ import annotations

import gc
import subprocess
import sys

from apps.core.gc_pacing import FORCE_AFTER, IDLE_CPU_SHARE, MIN_PROMOTIONS, full_collection_due


def test_a_busy_process_is_not_collected_until_forced() -> None:
    busy = IDLE_CPU_SHARE * 5
    assert not full_collection_due(cpu_share=busy, promotions=10_000, since_full=60)
    assert full_collection_due(cpu_share=busy, promotions=0, since_full=FORCE_AFTER)


def test_a_quiet_process_is_collected_once_enough_was_promoted() -> None:
    quiet = IDLE_CPU_SHARE / 10
    assert not full_collection_due(cpu_share=quiet, promotions=MIN_PROMOTIONS - 1, since_full=5)
    assert full_collection_due(cpu_share=quiet, promotions=MIN_PROMOTIONS, since_full=5)


def test_start_takes_generation_two_off_the_automatic_schedule() -> None:
    # In a child: start() changes process-wide collector state.
    code = (
        "import gc, time\n"
        "from apps.core import gc_pacing\n"
        "before = gc.get_threshold()\n"
        "gc_pacing.start(check_every=0.05)\n"
        "after = gc.get_threshold()\n"
        "assert after[:2] == before[:2] and after[2] >= 1_000_000, (before, after)\n"
        "assert gc.get_freeze_count() > 0\n"
        # garbage cycles promoted to generation 2, then a quiet process: collected
        "class Node:\n"
        "    pass\n"
        "for _ in range(3):\n"
        "    for _ in range(50_000):\n"
        "        a, b = Node(), Node(); a.b, b.a = b, a\n"
        "    gc.collect(1)\n"
        "for _ in range(20):\n"
        "    gc.collect(1)\n"
        "promoted = gc.get_count()[2]\n"
        "assert promoted >= 10, promoted\n"
        "deadline = time.monotonic() + 10\n"
        "while gc.get_count()[2] >= promoted and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "assert gc.get_count()[2] < promoted, 'no full collection while idle'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert gc.get_threshold()[2] < 1_000_000  # this process is untouched
