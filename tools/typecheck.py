"""`make typecheck`: mypy --strict on all product code, under the names users import.

The folders are not import names (setup.py maps `mockserver/` to `nanobanana_mock`, `schemas/`
to `nanobanana_mock.schemas`, and so on), and a type checker cannot follow setuptools'
editable finder. So this builds the installed layout as a tree of symbolic links under
build/typecheck/ (cheap, rebuilt each run, nothing reinstalled when a module is added) and runs
mypy there with the settings in pyproject.toml. Extra arguments go to mypy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"
# import name under nanobanana_mock -> folder (the mock's own modules are linked one by one)
SUBPACKAGES = {"schemas": "schemas", "client": "nanobanana", "conformance": "conformance"}


def build_tree() -> Path:
    package = TREE / "nanobanana_mock"
    shutil.rmtree(TREE, ignore_errors=True)
    package.mkdir(parents=True)
    for entry in sorted((ROOT / "mockserver").iterdir()):
        if entry.name != "__pycache__":
            os.symlink(entry, package / entry.name)
    for name, folder in SUBPACKAGES.items():
        os.symlink(ROOT / folder, package / name)
    return TREE


def main(argv: list[str]) -> int:
    tree = build_tree()
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
    command += argv or ["-p", "nanobanana_mock"]
    return subprocess.call(command, cwd=tree)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
