"""`make lint`'s import contracts: who may import whom, checked by import-linter.

The contracts are in pyproject.toml [tool.importlinter]. They name import names
(`nanobanana_mock.engine`, `nanobanana_mock.client`, ...), which are not the folders, so
import-linter reads the tree of links that tools/linktree.py builds (the installed layout):
it runs with that tree as its working directory, which it puts first on sys.path, so grimp
finds `nanobanana_mock` there rather than through setuptools' editable finder (which it cannot
walk). What grimp counts, checked on grimp 3.20: every `import` statement of a module,
including those inside functions and under `if TYPE_CHECKING:` (both are dependencies all the
same), and, with `include_external_packages`, third-party packages by their top-level name.
The graph is built afresh each run (about a third of a second, so no cache to go stale).

Usage: `python tools/import_contracts.py [TREE]`; TREE defaults to build/typecheck, rebuilt.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from linktree import ROOT, build

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def check(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run the contracts against the layout in `tree`; the output says which broke, and how."""
    command = [str(LINT_IMPORTS), str(ROOT / "pyproject.toml"), "--no-cache", "--no-logo"]
    env = {**os.environ, "COLUMNS": "100"}  # its report wraps at the terminal's width
    return subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)


def main(argv: list[str]) -> int:
    tree = Path(argv[0]) if argv else build()
    done = check(tree)
    if done.returncode == 0:
        kept = [line for line in done.stdout.splitlines() if line.startswith("Contracts:")]
        print(f"import contracts: {kept[0].removeprefix('Contracts: ') if kept else 'kept'}")
        return 0
    print(done.stdout, done.stderr, sep="", end="", file=sys.stderr)
    print(
        "import contracts FAILED: an import above breaks a rule of pyproject.toml "
        "[tool.importlinter] (ARCHITECTURE.md says who may import whom)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
