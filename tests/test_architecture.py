"""Who may import whom (pyproject.toml [tool.importlinter]): the contracts hold, and each one
catches the import it forbids, so none of them passes by checking nothing.

`make lint` (which `make test` and so CI run first) checks the contracts too; this test also
runs under a bare `pytest`, and proves the tools see what they should: a probe module written
into the tree of links (tools/linktree.py, never into the sources) must break its contract,
an import inside a function as much as one at the top of a module.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"

CONTRACTS = {
    "engine": "the engine imports no aiohttp, not even through another module",
    "client": "the client never imports the mock: of ours, only the contracts package",
    "contracts": "the contracts package (nanobanana_mock.schemas) imports nothing of ours",
    "mock-conformance": "the mock never imports the conformance suite "
    "(the suite starts the mock as its target)",
}
LAZY = "def later() -> None:\n    {}\n"  # an import inside a function counts too


def tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOLS / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def tree(tmp_path: Path) -> Path:
    built = tool("linktree.py", str(tmp_path / "tree"))
    assert built.returncode == 0, built.stderr
    return Path(built.stdout.strip())


def test_the_import_contracts_hold(tmp_path: Path) -> None:
    done = tool("import_contracts.py", str(tree(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"import contracts: {len(CONTRACTS)} kept, 0 broken."


@pytest.mark.parametrize(
    ("contract", "module", "source"),
    [
        ("engine", "engine/_probe.py", "import aiohttp\n"),
        ("engine", "engine/_probe.py", "from nanobanana_mock import http\n"),  # aiohttp, later
        ("client", "client/_probe.py", "from nanobanana_mock.engine import clock\n"),
        ("client", "client/_probe.py", LAZY.format("from nanobanana_mock import MockControl")),
        # a module of the mock that reaches no engine module: the contract itself must see it
        ("client", "client/_probe.py", "from nanobanana_mock import names\n"),
        ("client", "client/_probe.py", "from nanobanana_mock.control.client import MockControl\n"),
        ("contracts", "schemas/_probe.py", "from nanobanana_mock import names\n"),
        ("contracts", "schemas/_probe.py", "from nanobanana_mock.client import errors\n"),
        ("mock-conformance", "sources/_probe.py", "from nanobanana_mock.conformance import cli\n"),
        ("mock-conformance", "app_probe.py", LAZY.format("import nanobanana_mock.conformance")),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, contract: str, module: str, source: str
) -> None:
    layout = tree(tmp_path)
    (layout / "nanobanana_mock" / module).write_text(source)
    done = tool("import_contracts.py", str(layout))
    assert done.returncode == 1, done.stdout + done.stderr
    report = done.stderr
    assert f"{CONTRACTS[contract]} BROKEN" in report, report
    assert "nanobanana_mock." + module.removesuffix(".py").replace("/", ".") in report, report
    assert "import contracts FAILED" in report
    others = [name for name in CONTRACTS if name != contract]
    assert all(f"{CONTRACTS[name]} KEPT" in report for name in others), report


@pytest.mark.skipif(shutil.which("duplicates") is None, reason="the duplicates tool is absent")
def test_two_provider_modules_that_repeat_each_other_fail_the_duplicates_check(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "providers"
    shutil.copytree(ROOT / "mockserver" / "providers", folder)
    clean = tool("provider_duplicates.py", str(folder))
    assert (clean.returncode, clean.stdout.strip()) == (0, "provider duplicates: none")
    (folder / "acme.py").write_text((folder / "pixazo.py").read_text().replace("pixazo", "acme"))
    done = tool("provider_duplicates.py", str(folder))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "acme.py" in done.stderr and "pixazo.py" in done.stderr
    assert "provider duplicates FAILED" in done.stderr
