"""The installed layout, as a tree of links: what the type checker and the import contracts read.

The folders are not import names: setup.py maps `mockserver/` to `nanobanana_mock`, `schemas/`
to `nanobanana_mock.schemas`, `nanobanana/` to `nanobanana_mock.client` and `conformance/` to
`nanobanana_mock.conformance`. Neither mypy nor grimp (import-linter's graph) can follow
setuptools' editable finder, so `build()` mirrors the installed package: a real directory per
package, and a symbolic link per Python file to its source. It is cheap (about 75 links),
rebuilt on each run (a module added or moved needs no reinstall), and a file written into the
tree never lands in the sources (tests/test_architecture.py adds a probe module this way).

Usage: `python tools/linktree.py [DEST]` builds it (in build/typecheck by default) and prints where.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"
# import name -> folder, as in setup.py
PACKAGES = {
    "nanobanana_mock": "mockserver",
    "nanobanana_mock.schemas": "schemas",
    "nanobanana_mock.client": "nanobanana",
    "nanobanana_mock.conformance": "conformance",
}
SOURCES = frozenset({".py", ".pyi", ".typed"})


def build(tree: Path = TREE) -> Path:
    """Make `tree` hold the installed layout (links to the sources) and return it."""
    shutil.rmtree(tree, ignore_errors=True)
    for name, folder in PACKAGES.items():
        _mirror(ROOT / folder, tree.joinpath(*name.split(".")))
    return tree


def _mirror(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for entry in sorted(source.iterdir()):
        if entry.is_dir():
            if entry.name != "__pycache__" and _holds_python(entry):
                _mirror(entry, target / entry.name)
        elif entry.suffix in SOURCES:
            os.symlink(entry, target / entry.name)


def _holds_python(folder: Path) -> bool:
    return any(folder.rglob("*.py"))


if __name__ == "__main__":
    print(build(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else TREE))
