"""`make lint`'s check that no two provider modules repeat each other (ISSUE 12: "duplicates
reports no pair between two provider modules").

A provider module holds only what differs between providers; six or more lines shared with
another one (the same, or of the same shape with other names) belong in providers/base.py or
providers/queue.py. It runs the `duplicates` tool on mockserver/providers/ and fails on any
pair it lists. That tool always exits 0, so its rows (`D1 a.py:3-97 ~ b.py:3-97`) are what
decide. Where the tool is not installed (it is not a Python package) the check says so and
passes: it cannot decide there.

Usage: `python tools/provider_duplicates.py [FOLDER]`; FOLDER defaults to mockserver/providers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROVIDERS = ROOT / "mockserver" / "providers"
ROW = re.compile(r"^D\d+ ")


def pairs(folder: Path, tool: str) -> tuple[list[str], str]:
    """The rows `duplicates` lists for `folder`, and its whole output."""
    done = subprocess.run(
        [tool, "--repo", str(folder), "--most", "50"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    output = done.stdout + done.stderr
    return [line for line in output.splitlines() if ROW.match(line)], output


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else PROVIDERS
    tool = shutil.which("duplicates")
    if tool is None:
        print("provider duplicates: not checked (the duplicates tool is not installed)")
        return 0
    rows, output = pairs(folder, tool)
    if not rows:
        print("provider duplicates: none")
        return 0
    print(output, end="", file=sys.stderr)
    print(
        "provider duplicates FAILED: the provider modules above share lines; move what they "
        "share into providers/base.py or providers/queue.py (ARCHITECTURE.md)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
