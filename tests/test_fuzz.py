"""A bounded schemathesis run against the mock: every check, every phase, all providers.

`make fuzz` runs the same with many more examples.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_bounded_schemathesis_run_passes() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / "run.py"), "--max-examples", "3", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.stdout.count("passed") >= 3
