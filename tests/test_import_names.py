"""Every import of this project's code goes through its one import name, ``nanobanana_mock``.

The folders (``mockserver/``, ``schemas/``, ``nanobanana/``, ``conformance/``) are not import
names once installed (``setup.py`` maps them); an absolute import of a folder name works in
the source tree only by accident of ``sys.path`` and breaks in a user's project.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"mockserver", "schemas", "nanobanana", "conformance"}
SKIP = {".venv", ".git", "build", "dist", "reports"}


def _python_files() -> list[Path]:
    return [p for p in REPO.rglob("*.py") if not SKIP & set(p.relative_to(REPO).parts)]


def _absolute_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_no_code_imports_a_folder_name() -> None:
    bad = [
        f"{path.relative_to(REPO)}:{line}: import {name}"
        for path in _python_files()
        for line, name in _absolute_imports(path)
        if name.split(".")[0] in FOLDERS
    ]
    assert not bad, "\n".join(bad)


def _roots() -> dict[str, str]:
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    (assign,) = [
        n
        for n in tree.body
        if isinstance(n, ast.Assign) and n.targets[0].id == "ROOTS"  # type: ignore[attr-defined]
    ]
    return ast.literal_eval(assign.value)


def test_every_package_folder_is_mapped_under_the_one_name() -> None:
    roots = _roots()
    assert all(name.split(".")[0] == "nanobanana_mock" for name in roots)
    packaged = {folder for folder in roots.values()}
    for init in REPO.glob("*/__init__.py"):
        if init.parent.name not in {"tests", "bench", "fuzz"}:
            assert init.parent.name in packaged, f"{init.parent.name}/ is not in setup.py ROOTS"


@pytest.mark.parametrize("sub", ["schemas", "client", "conformance"])
def test_no_module_of_the_mock_shadows_a_mapped_package(sub: str) -> None:
    assert f"nanobanana_mock.{sub}" in _roots()
    assert not (REPO / "mockserver" / f"{sub}.py").exists()
    assert not (REPO / "mockserver" / sub).exists()
