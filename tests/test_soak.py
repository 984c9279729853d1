"""A short soak (the full one is `make soak`): concurrent clients and firing fault rules, zero
unexpected statuses, memory flat once eviction starts. Loopback only, bounded in time."""

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
            "1500",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert '"unexpected": []' in proc.stdout and "soak: passed" in proc.stdout
