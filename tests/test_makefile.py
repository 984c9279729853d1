"""The Makefile's venv: it records the interpreter that made it, a venv made by another one
than PYTHON asks for is remade, and the install shows its progress.

Run in a scratch copy of the Makefile with fake interpreters (shell scripts that say which
Python they are, make a venv whose ``python`` logs each pip call), so no second Python and
no network is needed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FAKE_PYTHON = """#!/bin/sh
# A fake Python {version}: identifies itself, makes a venv, and its venv logs pip calls.
case "$1" in
  -c) echo "$0 {version}"; [ "{old}" = no ] ;;
  -m) mkdir -p "$3/bin"
      printf '#!/bin/sh\\necho "{version} $*" >> "%s/pip.log"\\n[ ! -f "%s/fail" ]\\n' \\
        "$PWD" "$PWD" > "$3/bin/python"
      chmod +x "$3/bin/python" ;;
esac
"""

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    for name, version in (("py310", "3.10.12"), ("py311", "3.11.9"), ("py312", "3.12.4")):
        old = "yes" if version.startswith("3.10") else "no"
        fake = tmp_path / name
        fake.write_text(FAKE_PYTHON.format(version=version, old=old))
        fake.chmod(0o755)
    return tmp_path


def make(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``make venv`` in the scratch project, free of the outer make's variables."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "PYTHON")}
    env.pop("MAKELEVEL", None)
    return subprocess.run(
        ["make", "--no-print-directory", "venv", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def pip_calls(project: Path) -> list[str]:
    log = project / "pip.log"
    return log.read_text().splitlines() if log.exists() else []


def test_the_stamp_records_the_interpreter_and_installs_with_progress(project: Path) -> None:
    done = make(project, f"PYTHON={project}/py311")
    assert done.returncode == 0, done.stderr
    assert (project / ".venv/.interpreter").read_text().strip() == f"{project}/py311 3.11.9"
    assert "installing nanobanana-mock and its dependencies" in done.stdout
    install = [line for line in pip_calls(project) if "-e" in line.split()]
    assert install == ["3.11.9 -m pip install -e .[test,fast]"]  # no --quiet: pip's progress
    again = make(project, f"PYTHON={project}/py311")
    assert again.returncode == 0 and len(pip_calls(project)) == 2, "nothing to do the 2nd time"


def test_a_venv_whose_install_failed_is_remade_by_the_python_asked_for(project: Path) -> None:
    (project / "fail").touch()  # the first install fails, as a too-old Python's would
    assert make(project, f"PYTHON={project}/py311").returncode != 0
    assert make(project, f"PYTHON={project}/py311").returncode != 0  # the same Python: the same
    (project / "fail").unlink()
    done = make(project, f"PYTHON={project}/py312")
    assert done.returncode == 0, done.stderr
    assert f"made by {project}/py311 3.11.9: remaking it with {project}/py312 3.12.4" in done.stdout
    assert (project / ".venv/.interpreter").read_text().strip() == f"{project}/py312 3.12.4"
    assert pip_calls(project)[-1].startswith("3.12.4 -m pip install -e")


def test_a_working_venv_is_remade_only_when_another_python_is_asked_for(project: Path) -> None:
    assert make(project, f"PYTHON={project}/py312").returncode == 0
    calls = len(pip_calls(project))
    kept = make(project)  # no PYTHON: the working 3.12 venv stays, whatever python3 is
    assert kept.returncode == 0 and len(pip_calls(project)) == calls, kept.stdout
    assert make(project, f"PYTHON={project}/py311").returncode == 0
    assert (project / ".venv/.interpreter").read_text().strip() == f"{project}/py311 3.11.9"


def test_a_too_old_python_is_refused_before_any_venv_is_made(project: Path) -> None:
    refused = make(project, f"PYTHON={project}/py310")
    assert refused.returncode != 0
    assert f"{project}/py310 is Python 3.10.12: 3.11 or newer is needed" in refused.stderr
    assert "PYTHON=python3.12" in refused.stderr
    assert not (project / ".venv").exists()


def test_a_changed_setup_py_reinstalls(project: Path) -> None:
    assert make(project, f"PYTHON={project}/py311").returncode == 0
    calls = len(pip_calls(project))
    setup = project / "setup.py"
    setup.write_text("")
    stamp = project / ".venv/.installed"
    os.utime(setup, (stamp.stat().st_mtime + 5, stamp.stat().st_mtime + 5))
    assert make(project, f"PYTHON={project}/py311").returncode == 0
    assert len(pip_calls(project)) == calls + 2  # pip upgraded, then the package installed


@pytest.mark.parametrize(
    ("args", "env", "wanted"),
    [
        ((), {}, "--seed 0 --time-scale 10"),
        (("SCENARIO=slow-queue",), {}, "--scenario slow-queue"),
        (("SCENARIO=slow-queue", "TIME_SCALE=5"), {}, "--scenario slow-queue --time-scale 5"),
        (("SCENARIO=slow-queue",), {"SEED": "3"}, "--scenario slow-queue --seed 3"),
        (("SEED=4", "TIME_SCALE=1"), {}, "--seed 4 --time-scale 1"),
        (
            ("STORE=redis://127.0.0.1:6390/0", "PROCESSES=2"),
            {},
            "--seed 0 --time-scale 10 --store redis://127.0.0.1:6390/0 --processes 2",
        ),
        (
            ("STORE=redis://127.0.0.1:6390/0",),
            {},
            "--seed 0 --time-scale 10 --store redis://127.0.0.1:6390/0",
        ),
        (("SCENARIO=slow-queue", "PROCESSES=3"), {}, "--scenario slow-queue --processes 3"),
    ],
)
def test_serve_leaves_a_scenarios_seed_and_time_scale_alone(args, env, wanted) -> None:
    """``make serve SCENARIO=…`` passes no --seed or --time-scale the user did not give,
    so the scenario's own hold (a flag would win over them)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "SEED")}
    for name in ("MAKELEVEL", "TIME_SCALE", "STORE", "PROCESSES"):
        clean.pop(name, None)
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "serve", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    command = done.stdout.strip().splitlines()[-1]
    assert command.endswith(f"-m nanobanana_mock --host 127.0.0.1 --port 8080 {wanted}"), command


FAKE_APT_GET = """#!/bin/sh
# A fake apt-get: logs its arguments; "install" puts a fake redis-server on the PATH.
echo "$*" >> "{log}"
case "$*" in
  *install*) printf '#!/bin/sh\\n' > "{bin}/redis-server"; /bin/chmod +x "{bin}/redis-server" ;;
esac
"""


def test_make_test_installs_redis_server_when_it_is_missing(tmp_path: Path) -> None:
    """``make test`` runs the store's tests against a real Redis: it installs Debian's
    ``redis-server`` first when none is on the PATH, and leaves an installed one alone."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    apt = bin_dir / "apt-get"
    apt.write_text(FAKE_APT_GET.format(log=log, bin=bin_dir))
    apt.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env["PATH"] = str(bin_dir)  # no redis-server (nor anything else) but the fake apt-get

    def make_redis() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [shutil.which("make") or "make", "--no-print-directory", "redis-server"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    done = make_redis()
    assert done.returncode == 0, done.stderr
    assert "installing redis-server from Debian's packages" in done.stdout
    assert log.read_text().splitlines() == ["install -y -q redis-server"]
    again = make_redis()
    assert again.returncode == 0 and "installing" not in again.stdout
    assert len(log.read_text().splitlines()) == 1, "an installed redis-server is kept"
    planned = subprocess.run(
        ["make", "--no-print-directory", "-n", "-p", "test"],
        cwd=ROOT, env={**env, "PATH": os.environ["PATH"]}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert re.search(r"^test: .*\bredis-server\b", planned.stdout, re.MULTILINE), "a prerequisite"


def test_make_test_installs_chromium_when_it_is_missing(tmp_path: Path) -> None:
    """The dashboard's tests drive Debian's ``chromium``: ``make test`` installs it first when
    none is on the PATH, and leaves an installed one alone."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    apt = bin_dir / "apt-get"
    apt.write_text(FAKE_APT_GET.format(log=log, bin=bin_dir).replace("redis-server", "chromium"))
    apt.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env["PATH"] = str(bin_dir)  # no chromium (nor anything else) but the fake apt-get
    make = [shutil.which("make") or "make", "--no-print-directory", "chromium"]
    for _ in range(2):
        done = subprocess.run(
            make, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
    assert log.read_text().splitlines() == ["install -y -q chromium"], "installed once, then kept"
    planned = subprocess.run(
        ["make", "--no-print-directory", "-n", "-p", "test"],
        cwd=ROOT, env={**env, "PATH": os.environ["PATH"]}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert re.search(r"^test: .*\bchromium\b", planned.stdout, re.MULTILINE), "a prerequisite"
