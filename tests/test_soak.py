"""Short soaks (the full ones: `make soak`, `make soak STORE=redis`): concurrent clients,
firing fault rules and the hostile clients of issue 10 (slow headers and bodies, oversized and
deeply nested bodies, catastrophic-regex prompts); zero unexpected statuses, no stall of the
event loop, memory flat once eviction has really run. Then two processes on Redis through a
process kill and a Redis outage. Each waits on the work done (accepted submits), not on the
wall clock, within a bound. Loopback only, bounded in time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def soak(*args: str) -> str:
    """bench/soak.py with ``args``: its output, once it passed."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return proc.stdout


def test_short_soak() -> None:
    said = soak("--seconds", "8", "--clients", "20", "--max-jobs", "1000", "--max-seconds", "150")
    assert '"unexpected": []' in said and "soak: passed" in said


def test_short_soak_across_two_processes_on_redis() -> None:
    """Two mock processes on one Redis (persisting to an append-only file), clients
    alternating: one process SIGKILLed, Redis stopped for 5 s and started again; every job
    accepted finishes exactly once, the store's 503 only in the outage, service resumes, the
    survivor's RSS flat. A few seconds of load, bounded."""
    said = soak(
        "--store",
        "redis",
        "--seconds",
        "12",
        "--clients",
        "12",
        "--max-jobs",
        "100",
        "--max-seconds",
        "90",
    )
    assert '"unexpected": []' in said and '"lost": []' in said and "soak: passed" in said
    assert '"duplicated": []' in said and '"store_503_outside_outage": 0' in said
