"""A short soak (the full one is `make soak`): concurrent clients, firing fault rules and the
hostile clients of issue 10 (slow headers and bodies, oversized and deeply nested bodies,
catastrophic-regex prompts); zero unexpected statuses, no stall of the event loop, memory flat
once eviction has really run. It waits on the work done (accepted submits), not on the wall
clock, within a bound. Loopback only, bounded in time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_short_soak() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            "--seconds",
            "15",
            "--clients",
            "20",
            "--max-jobs",
            "1000",
            "--max-seconds",
            "150",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert '"unexpected": []' in proc.stdout and "soak: passed" in proc.stdout
