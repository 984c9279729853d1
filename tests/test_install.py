"""The wheel, installed as a user installs it, into a project of their own.

The wheel is built from the tracked files alone and installed with ``pip`` into a fresh
virtual environment. The scratch project it runs in has its own ``schemas.py``,
``conformance.py``, ``nanobanana.py`` and ``mockserver.py`` on the path (the generic names a
team's code is likely to use). Everything the README promises must work there: the pytest
plugin example, ``python -m nanobanana_mock``, and every published console script, each with
``--help`` and then a real run against the mock.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from nanobanana_mock.control import ui
from tests.harness import mock_process
from tests.test_readme import PLUGIN_EXAMPLE, README

REPO = Path(__file__).resolve().parents[1]
USER_MODULES = ("schemas", "conformance", "nanobanana", "mockserver")
INSTALL_SECONDS = 600  # first-time downloads on a cold cache; a warm one takes ~30 s


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    project: Path

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MOCK_", "PYTHON"))}
        env.update(PYTHONPATH=str(self.project), PYTHONDONTWRITEBYTECODE="1", **extra)
        return env

    def run(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            args,
            cwd=self.project,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _tracked_copy(dest: Path) -> Path:
    """The repository as a clone has it: tracked files only."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=False
    ).stdout
    names = [n for n in listed.decode().split("\0") if n] if listed else None
    if not names:  # not a git checkout: everything but the local state
        skip = {".venv", ".git", "build", "dist", "reports", "__pycache__"}
        names = [
            str(p.relative_to(REPO))
            for p in REPO.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(REPO).parts)
        ]
    for name in names:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, target)
    return dest


def _pip(*args: str) -> None:
    done = subprocess.run(
        [*args, "--disable-pip-version-check", "--quiet"],
        capture_output=True,
        text=True,
        timeout=INSTALL_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("install")
    source = _tracked_copy(root / "source")
    _pip(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(root / "dist"), str(source))
    (wheel,) = (root / "dist").glob("nanobanana_mock-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # segmind: the README's plugin example drives the official SDK
    _pip(
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--no-compile",
        str(wheel),
        "segmind==1.3.0",
    )
    project = root / "project"
    project.mkdir()
    for name in USER_MODULES:  # importable, and nothing like ours
        (project / f"{name}.py").write_text(f'"""The user\'s own {name}."""\nOWNER = "user"\n')
    return Installed(wheel, venv, project)


def _console_scripts(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        parser = configparser.ConfigParser()
        parser.read_string(archive.read(name).decode())
    return sorted(parser["console_scripts"])


@contextmanager
def _serving(installed: Installed, *command: str) -> Iterator[str]:
    """Start the installed mock with ``command`` (port 0) and yield its base URL."""
    with mock_process(
        [*command, "--port", "0", "--time-scale", "1000"],
        cwd=installed.project,
        env=installed.env(),
        stderr=subprocess.STDOUT,
    ) as (base, _):
        yield base


def test_the_wheel_installs_one_import_name(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as archive:
        tops = {n.split("/")[0] for n in archive.namelist() if ".dist-info/" not in n}
    assert tops == {"nanobanana_mock"}


def test_the_shipped_data_is_in_the_wheel(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as archive:
        names = set(archive.namelist())
    for folder in ("schemas/segmind", "schemas/mock", "scenarios", "conformance/drift_scenarios"):
        assert any(n.startswith(f"nanobanana_mock/{folder}/") for n in names), folder
    assert "nanobanana_mock/conformance/suite/conftest.py" in names
    dashboard = {n.rpartition("/")[2] for n in names if n.startswith("nanobanana_mock/ui/")}
    assert dashboard >= set(ui.FILES), set(ui.FILES) - dashboard


def test_the_readme_plugin_example_passes_beside_the_users_modules(
    installed: Installed,
) -> None:
    (code,) = PLUGIN_EXAMPLE.findall(README.read_text(encoding="utf-8"))
    (installed.project / "test_readme_example.py").write_text(code)
    done = installed.run(installed.bin("python"), "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout


def test_every_console_script_answers_help(installed: Installed) -> None:
    scripts = _console_scripts(installed.wheel)
    assert scripts == ["nanobanana", "nanobanana-conformance", "nanobanana-mock"]
    for script in scripts:
        done = installed.run(installed.bin(script), "--help")
        assert done.returncode == 0, (script, done.stderr[-2000:])
        assert "usage:" in done.stdout, script
    done = installed.run(installed.bin("python"), "-m", "nanobanana_mock", "--help")
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr[-2000:]


@pytest.mark.parametrize("command", [("python", "-m", "nanobanana_mock"), ("nanobanana-mock",)])
def test_the_mock_serves_from_the_install(installed: Installed, command: tuple[str, ...]) -> None:
    with _serving(installed, installed.bin(command[0]), *command[1:]) as base:
        request = urllib.request.Request(
            f"{base}/v2/nano-banana",
            data=b'{"prompt": "Dancing Banana"}',
            headers={"x-api-key": "test", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
            assert b'"request_id"' in answer.read()


def test_a_packaged_scenario_is_found_by_name(installed: Installed) -> None:
    script = installed.bin("nanobanana-mock")
    with _serving(installed, script, "--scenario", "slow-queue") as base:
        settings = json.loads(urllib.request.urlopen(f"{base}/_mock/settings", timeout=10).read())
    assert settings["workers"] == 1  # slow-queue.yaml's one worker
    done = installed.run(script, "--scenario", "no-such-scenario", "--port", "0")
    assert done.returncode == 2
    assert "flaky-segmind" in done.stderr and "Traceback" not in done.stderr


def test_the_client_cli_generates_against_the_installed_mock(installed: Installed) -> None:
    with _serving(installed, installed.bin("nanobanana-mock")) as base:
        done = installed.run(
            installed.bin("nanobanana"),
            *("generate", "--provider", "seaart", "--model", "nano_banana_pro"),
            *("--prompt", "A red apple", "--out", "out"),
            SEAART_API_KEY="anything",
            SEAART_BASE_URL=base,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    (image,) = (installed.project / "out").glob("*.png")
    assert image.read_bytes().startswith(b"\x89PNG")


def test_the_conformance_cli_runs_from_the_install(installed: Installed) -> None:
    script = installed.bin("nanobanana-conformance")
    done = installed.run(script, "--provider", "seaart", "--report-dir", "reports")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "conformant" in done.stdout
    drift = installed.run(
        script,
        *("--provider", "segmind", "--scenario", "segmind-renamed-request-id"),
        *("--report-dir", "reports"),
    )
    assert drift.returncode == 1, drift.stdout[-3000:] + drift.stderr[-2000:]
    assert (installed.project / "reports" / "drift.json").is_file()


def test_the_conformance_cli_ignores_the_pytest_setup_of_the_project_around_it(
    installed: Installed,
) -> None:
    """A ``.venv`` inside a project: pytest, looking upwards from the installed suite, would
    take that project's ini file (its addopts and filterwarnings) and root conftest.py, and
    load every pytest plugin installed in that environment."""
    around = installed.venv.parent  # an ancestor of the venv, as a project is of its .venv
    (site,) = installed.venv.glob("lib/python*/site-packages")
    planted = {
        around / "pytest.ini": "[pytest]\naddopts = --no-such-option\nfilterwarnings = error\n",
        around / "conftest.py": 'raise SystemExit("the project\'s own conftest.py was loaded")\n',
        site / "userplugin.py": 'raise SystemExit("a plugin of the environment was loaded")\n',
        site / "userplugin-0.dist-info" / "METADATA": "Metadata-Version: 2.1\nName: userplugin\n"
        "Version: 0\n",
        site / "userplugin-0.dist-info" / "entry_points.txt": "[pytest11]\nuser = userplugin\n",
    }
    for path, text in planted.items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    try:
        script = installed.bin("nanobanana-conformance")
        done = installed.run(script, "--provider", "pixazo", "--report-dir", "reports")
    finally:
        for path in planted:
            path.unlink()
        (site / "userplugin-0.dist-info").rmdir()
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "verdict: conformant" in output
    for leak in ("was loaded", "no-such-option", "Warning", "Traceback"):
        assert leak not in output, output[-3000:]
