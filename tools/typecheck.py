"""`make typecheck` (and part of `make lint`): mypy --strict on all product code.

mypy runs in the tree of links that tools/linktree.py builds (the installed layout, under the
names users import), with the settings in pyproject.toml [tool.mypy]; its cache stays in
.mypy_cache/ at the root, so a second run only re-reads what changed. Extra arguments go to
mypy (e.g. `-m nanobanana_mock.engine.clock`).
"""

from __future__ import annotations

import subprocess
import sys

from linktree import ROOT, build


def main(argv: list[str]) -> int:
    tree = build()
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
    code = subprocess.call([*command, *(argv or ["-p", "nanobanana_mock"])], cwd=tree)
    if code:
        print(
            "typecheck FAILED: mypy --strict found the errors above "
            "(settings: pyproject.toml [tool.mypy]; run `make typecheck` alone to re-check)",
            file=sys.stderr,
        )
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
