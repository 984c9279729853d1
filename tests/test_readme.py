"""Every code block of the README runs as printed.

Each fenced block is classified, and this test fails on a block it cannot classify:
- the plugin example between ``<!-- readme-test:start -->`` and ``<!-- readme-test:end -->``
  runs as a test file through the installed pytest plugin;
- a block right after ``<!-- not run: KEY -->`` is not run: KEY must be in :data:`NOT_RUN`,
  which says why, and every key there must be used (once);
- every other ``python`` block runs as a script, every ``sh``/``bash``/``console`` block step
  by step in one shell, each in a scratch copy of the clone (the repository's files linked),
  with no provider key or base-URL variable set but those the block sets itself.

The README's examples find the mock where ``make serve`` puts it, ``http://127.0.0.1:8080``.
This test serves the mock on a free loopback port instead (at 100 virtual seconds per wall
second, so no job is waited for in real time, and checking its own answers), and that origin is
the one text of a block it substitutes. :data:`CHECKS` holds what a block must print beyond
exiting 0, where the README says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from nanobanana_mock.client.cli import EXIT_CODES
from nanobanana_mock.config import MockConfig
from nanobanana_mock.control.client import MockControl
from nanobanana_mock.control.pytest_plugin import MockServer
from tests.harness import validate

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
PLUGIN_EXAMPLE = re.compile(
    r"<!-- readme-test:start -->\s*```python\n(.*?)```\s*<!-- readme-test:end -->", re.S
)
ORIGIN = "http://127.0.0.1:8080"  # make serve's, as the README's examples use it
TIME_SCALE = 100.0
SHELLS = frozenset({"sh", "bash", "shell", "console"})
BLOCK_TIMEOUT = 90.0

NOT_RUN: dict[str, str] = {
    "quick-start": "`make test` runs this very test; `make serve` is the foreground server that"
    " this test replaces with the same server on a free port",
    "install": "installs into the current environment (here it would replace the suite's own"
    " editable install); tests/test_install.py installs the wheel into a fresh one instead",
    "team-deploy": "starts a redis-server on a fixed port and serves in the foreground;"
    " tests/test_processes.py starts the same two-process deployment on a free port against"
    " its own redis-server (tests/redis_server.py)",
    "proxy-live": "forwards to the live Segmind and SeaArt APIs: network and keys",
    "conformance-live": "a live run needs a real key and the network, and spends money",
    "layout": "a folder listing, not a command",
    "fal-serve": "a foreground server on a fixed port; tests/mockserver/test_banner.py starts"
    " it with --tls-port 0 and reaches it over HTTPS with the CA it prints",
    "fal-client": "needs the variables of a running --tls-port mock set before the import;"
    " tests/test_fal_client.py runs these calls against one",
    "prometheus-config": "a Prometheus configuration, not a command; the block before it"
    " scrapes the same path, and tests/mockserver/test_metrics.py parses what it answers",
    "scorecard-example": "the Segmind SDK's scorecard: tests/test_segmind_sdk_scorecard.py checks"
    " that it is that test's output, unedited",
}
# A step whose documented exit is not 0: (a word of its command, the exit the README gives).
EXPECTED_EXIT: dict[str, int] = {
    "segmind-renamed-request-id": 1,  # the drift-scenario table: breaking drift, exit 1
}
# Variables that would change what a block does: each block sets what it needs itself.
CLEARED_ENV = re.compile(
    r"(SEGMIND|SEAART|SEACLOUD|PIXAZO)_(API_KEY|BASE_URL)|MOCK_.*|PORT|HOST|SEED|TIME_SCALE"
    r"|PYTEST_ADDOPTS"
)
NOT_LINKED = frozenset({".git", "reports", "out", "__pycache__"})


# -- the README's blocks ------------------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    key: str  # "<heading>#<n>": the n-th block under that heading
    marker: str | None  # the HTML comment right before the fence, if any

    @property
    def kind(self) -> str:
        if self.marker == "<!-- readme-test:start -->":
            return "pytest"
        if self.marker is not None and self.marker.startswith("<!-- not run:"):
            return "not run"
        if self.lang == "python":
            return "python"
        return "shell" if self.lang in SHELLS else f"unknown ({self.lang or 'no language'})"

    @property
    def not_run_key(self) -> str:
        assert self.marker is not None
        return self.marker.removeprefix("<!-- not run:").removesuffix("-->").strip()


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block of a Markdown text, with its heading and the comment before it."""
    found: list[Block] = []
    lines = text.splitlines()
    heading, seen, index = "", dict[str, int](), 0
    while index < len(lines):
        line = lines[index]
        fence = re.fullmatch(r"```(\S*)\s*", line)
        if fence is None:
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            index += 1
            continue
        end = lines.index("```", index + 1)
        seen[heading] = seen.get(heading, 0) + 1
        code = "\n".join(lines[index + 1 : end]) + "\n"
        key = f"{heading}#{seen[heading]}"
        found.append(Block(index + 1, fence.group(1), code, key, _marker(lines, index)))
        index = end + 1
    return found


def _marker(lines: list[str], fence: int) -> str | None:
    before = [line.strip() for line in lines[:fence] if line.strip()]
    if before and before[-1].startswith("<!--") and before[-1].endswith("-->"):
        return before[-1]
    return None


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
RUN = [block for block in BLOCKS if block.kind in ("python", "shell")]


def test_every_block_is_run_or_listed_with_its_reason() -> None:
    unknown = [f"line {b.line}: {b.kind}" for b in BLOCKS if b.kind.startswith("unknown")]
    assert unknown == [], "a README block neither run nor marked <!-- not run: KEY -->"
    keys = [block.not_run_key for block in BLOCKS if block.kind == "not run"]
    assert sorted(keys) == sorted(NOT_RUN), "the not-run markers and NOT_RUN differ"
    assert [block.kind for block in BLOCKS].count("pytest") == 1
    assert set(CHECKS) <= {block.key for block in RUN}, "a check whose block is gone"


def test_the_readme_classifies_a_new_block() -> None:
    """The classification itself: a new block is run, unless marked; text must be marked."""
    text = "# A\n```sh\nls\n```\n<!-- not run: x -->\n```sh\nrm -rf /\n```\n```\nfoo/\n```\n"
    kinds = [(block.key, block.kind) for block in readme_blocks(text)]
    assert kinds == [("A#1", "shell"), ("A#2", "not run"), ("A#3", "unknown (no language)")]


# -- the plugin example --------------------------------------------------------------------------
def test_readme_example_is_present() -> None:
    assert len(PLUGIN_EXAMPLE.findall(README.read_text(encoding="utf-8"))) == 1


def test_readme_example_passes(pytester: pytest.Pytester) -> None:
    (code,) = PLUGIN_EXAMPLE.findall(README.read_text(encoding="utf-8"))
    pytester.makepyfile(test_readme_example=code)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)


# -- the CLI's exit codes --------------------------------------------------------------------------
def test_the_exit_code_table_lists_every_code_the_cli_uses() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### The CLI") :]
    table = section[section.index("**Exit codes:**") : section.index("\n## ")]
    listed = [int(code) for code in re.findall(r"^\| (\d+) \|", table, re.M)]
    assert listed == [code for code, _, _ in EXIT_CODES]


# -- running the blocks ---------------------------------------------------------------------------
@dataclass
class Step:
    command: str
    code: int | None = None
    out: str = ""
    err: str = ""


@dataclass
class Ran:
    block: Block
    cwd: Path
    base_url: str
    control: MockControl
    steps: list[Step]

    def step(self, word: str) -> Step:
        (found,) = [step for step in self.steps if word in step.command]
        return found


@pytest.fixture(scope="module")
def served() -> Iterator[MockServer]:
    config = MockConfig(port=0, time_scale=TIME_SCALE, self_check=True)
    with MockServer(config) as server:
        yield server


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A scratch copy of the clone: the repository's entries linked, nothing generated."""
    for entry in ROOT.iterdir():
        if entry.name not in NOT_LINKED and not entry.name.startswith((".pytest", ".ruff")):
            (tmp_path / entry.name).symlink_to(entry)
    return tmp_path


def block_env() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not CLEARED_ENV.fullmatch(name)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def shell_steps(code: str, lang: str) -> list[str]:
    """The commands of a shell block, each complete (continuation lines and multi-line quotes
    joined; comment-only lines dropped; a console block's ``$`` prompts only)."""
    lines = code.splitlines()
    if lang == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    steps, pending = [], ""
    for line in lines:
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line + "\n"
        if not line.rstrip().endswith("\\") and _complete(pending):
            steps.append(pending.rstrip("\n"))
            pending = ""
    assert not pending, f"an unfinished command: {pending!r}"
    return steps


def _complete(script: str) -> bool:
    return (
        subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True).returncode == 0
    )


def run_shell(block: Block, code: str, cwd: Path) -> list[Step]:
    """The steps in one shell, in order, each one's exit code and output recorded."""
    steps = [Step(command) for command in shell_steps(code, block.lang)]
    assert steps, f"line {block.line}: a shell block without a command"
    script = ["set -o pipefail"]
    for number, step in enumerate(steps):
        script += [
            step.command,
            f"printf '\\n@@step {number} %s\\n' $? ; printf '\\n@@step\\n' >&2",
        ]
    done = run_bounded(["bash", "-c", "\n".join(script)], cwd)
    outs = re.split(r"\n?@@step (\d+) (\d+)\n", done.stdout)
    errs = re.split(r"\n?@@step\n", done.stderr)
    for number, step in enumerate(steps):
        if 3 * number + 2 < len(outs):
            step.code = int(outs[3 * number + 2])
            step.out, step.err = outs[3 * number], errs[number]
    return steps


def run_python(code: str, cwd: Path) -> list[Step]:
    done = run_bounded([sys.executable, "-"], cwd, code)
    return [Step("python", done.returncode, done.stdout, done.stderr)]


def run_bounded(
    argv: list[str], cwd: Path, code: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a block in a process group of its own, ended whole if the block overruns (e.g. a
    server left in the foreground, or one sent to the background holding the output open)."""
    proc = subprocess.Popen(
        argv, cwd=cwd, env=block_env(), text=True, start_new_session=True,
        stdin=subprocess.DEVNULL if code is None else subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = proc.communicate(code, timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        # Not reaped yet, so the group is still this block's: end it all.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"did not finish within {BLOCK_TIMEOUT:g} s:\n{out}\n{err}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def mock_violations(base_url: str) -> list[str]:
    """The answers the mock sent that broke its contract (it checks its own, self_check)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{base_url}/_mock/health", timeout=10) as answer:
        return list(json.load(answer)["violations"])


def expected_exit(command: str) -> int:
    return next((code for word, code in EXPECTED_EXIT.items() if word in command), 0)


@pytest.mark.parametrize("block", RUN, ids=[f"line{b.line}-{b.key}" for b in RUN])
def test_the_block_runs_as_printed(served: MockServer, clone: Path, block: Block) -> None:
    control = served.control
    assert control is not None
    control.reset()
    code = block.code.replace(ORIGIN, served.base_url)
    steps = run_python(code, clone) if block.kind == "python" else run_shell(block, code, clone)
    for step in steps:
        shown = f"{step.command}\n--- stdout\n{step.out}\n--- stderr\n{step.err}"
        assert step.code == expected_exit(step.command), f"line {block.line}: {shown}"
    assert mock_violations(served.base_url) == [], "the mock broke its own contract"
    check = CHECKS.get(block.key)
    if check is not None:
        check(Ran(block, clone, served.base_url, control, steps))


# -- what the blocks print, where the README says so -----------------------------------------------
def readme_line_pattern(line: str) -> re.Pattern[str]:
    """A line of output as the README shows it, as a pattern: ``…`` stands for an id, a
    ``6.2s`` for any duration, and an ``<- annotation`` is dropped."""
    text = re.sub(r"\s+<- .*$", "", line.removeprefix("# ").strip())
    parts = re.split(r"(…|\b\d+\.\ds\b)", text)
    pattern = "".join(
        r"[\w-]+" if part == "…" else r"\d+\.\ds" if re.fullmatch(r"\d+\.\ds", part)
        else re.escape(part) for part in parts
    )  # fmt: skip
    return re.compile(pattern)


def check_segmind_sdk(ran: Ran) -> None:
    url, status = ran.steps[0].out.splitlines()
    assert url.startswith(ran.base_url + "/")  # an image URL served by the mock
    assert status in ("QUEUED", "PROCESSING", "COMPLETED")


def check_seaart_curl(ran: Ran) -> None:
    submitted = json.loads(ran.steps[0].out)
    validate("seaart", "submit", submitted)
    assert submitted["status_url"].startswith(ran.base_url)


def check_pixazo_curl(ran: Ran) -> None:
    result = json.loads(ran.steps[-1].out)
    validate("pixazo", "result", result)
    (job,) = ran.control.jobs.list("pixazo")
    assert result["request_id"] == job.id


def check_schemas(ran: Ran) -> None:
    assert ran.steps[0].out == "422\n"


def check_library(ran: Ran) -> None:
    assert ran.steps[0].out == "2752 1536\n"
    with Image.open(ran.cwd / "apple.png") as picture:
        assert picture.size == (2752, 1536) and picture.format == "PNG"


def check_cli(ran: Ran) -> None:
    generate = ran.step("nanobanana generate")
    shown = [line for line in ran.block.code.splitlines() if line.startswith("# ")]
    progress, summary = (readme_line_pattern(line) for line in shown)
    assert summary.fullmatch(generate.out.strip()), (summary.pattern, generate.out)
    states = generate.err.splitlines()
    assert states[-1].split()[2] == "SUCCEEDED/COMPLETED"
    shape = re.compile(progress.pattern.replace(r"QUEUED/IN_QUEUE\ \(position\ 0\)", r".+"))
    assert all(shape.fullmatch(line) for line in states), states
    (handle_file,) = (ran.cwd / "out").glob("mmsu_*.job.json")
    request_id = handle_file.name.removesuffix(".job.json")
    assert ran.step("status").out == f"[seaart] {request_id} SUCCEEDED/COMPLETED\n"
    assert summary.fullmatch(ran.step("wait").out.strip())
    assert ran.step("cancel").out == "already finished\n"
    with Image.open(ran.cwd / "out" / f"{request_id}_1.png") as picture:
        assert picture.size == (2752, 1536)


def check_fault_rule(ran: Ran) -> None:
    (rule,) = ran.control.faults.list()
    assert rule["match"]["prompt_contains"] == "forbidden"
    assert json.loads(ran.steps[0].out)


def check_failover(ran: Ran) -> None:
    """Segmind's outage sends the client to fal; once it is over, Segmind answers again."""
    lines = ran.steps[0].out.splitlines()
    assert lines == [
        "segmind is down (ServerError); falling back",
        "('fal', 2752, 1536)",
        "('segmind', 2752, 1536)",
    ], lines
    submits = ran.control.journal.entries(provider="segmind", operation="submit")
    assert [e.status for e in submits] == [503, 200]


def check_conformance(ran: Ran) -> None:
    for step in ran.steps:
        verdict = "breaking" if expected_exit(step.command) else "verdict: conformant"
        assert verdict in step.out, step.out


def check_dry_run(ran: Ran) -> None:
    (step,) = ran.steps
    assert "conformance plan, target live:" in step.out and "no request was sent" in step.out


CHECKS: dict[str, Callable[[Ran], None]] = {
    "Pointing your client at the mock#1": check_segmind_sdk,
    "Pointing your client at the mock#2": check_seaart_curl,
    "Pointing your client at the mock#3": check_pixazo_curl,
    "The contracts (`schemas/`)#1": check_schemas,
    "The client library (`nanobanana_mock.client`)#1": check_library,
    "The CLI#1": check_cli,
    "Failures on demand#1": check_fault_rule,
    "Failover between providers#1": check_failover,
    "Conformance and drift#1": check_conformance,
    "Conformance and drift#2": check_dry_run,
}
