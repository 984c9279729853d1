"""The ``nanobanana`` command line, end to end against the mock (the pytest plugin's server).

No test waits on a job in real time: jobs are instant, or the CLI runs in a thread polling
every few milliseconds while the test moves the mock's frozen clock one step at a time.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from nanobanana_mock.client import JobHandle
from nanobanana_mock.client.cli import EXIT_CODES, main
from nanobanana_mock.client.providers import ADAPTERS

KEY = "test-key"
MODEL = {"segmind": "nano-banana-2", "seaart": "nano_banana_pro", "pixazo": "nano-banana-pro"}
EXTRA = {"segmind": [], "seaart": [], "pixazo": ["--image-url", "https://a.io/in.png"]}
PROVIDERS = tuple(MODEL)
INSTANT = pytest.mark.nanobanana_mock(queue_seconds=0, processing_seconds={"*": 0})
FAST = ["--interval", "0.01", "--max-interval", "0.02"]


def generate(mock, provider: str, out: Path, *extra: str) -> list[str]:
    """The argv of a generate against the mock, polling fast, saving into ``out``."""
    return [
        "generate",
        *("--provider", provider, "--model", MODEL[provider], "--prompt", "a test"),
        *("--base-url", mock.base_url, "--api-key", KEY, "--out", str(out)),
        *FAST,
        *EXTRA[provider],
        *extra,
    ]


def on_handle(command: str, handle_file: Path, *extra: str) -> list[str]:
    fast = FAST if command == "wait" else []
    return [command, str(handle_file), "--api-key", KEY, *fast, *extra]


def polls(mock, provider: str) -> int:
    counts = mock.journal.counts(provider=provider)
    return counts.get(f"{provider}.status", 0) + counts.get(f"{provider}.result", 0)


def wait_for(predicate, what: str, limit: float = 5.0) -> None:
    """Wait (briefly, in wall time) for the CLI under test to do something."""
    end = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.005)


class Background:
    """``main(argv)`` in a thread, so the test can move the clock while the CLI waits."""

    def __init__(self, argv: list[str]) -> None:
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, args=(argv,), daemon=True)
        self.thread.start()

    def _run(self, argv: list[str]) -> None:
        self.code = main(argv)

    def join(self) -> int:
        self.thread.join(10)
        assert not self.thread.is_alive(), "the CLI did not finish"
        assert self.code is not None
        return self.code


def step(mock, provider: str, seconds: float, polls_after: int = 2) -> None:
    """Advance the clock, then let the CLI poll ``polls_after`` more times."""
    if seconds:
        mock.clock.advance(seconds)
    seen = polls(mock, provider)
    wait_for(lambda: polls(mock, provider) >= seen + polls_after, "the CLI's polls")


def saved_handle(out: Path) -> Path:
    (handle_file,) = out.glob("*.job.json")
    return handle_file


def submit_in_background(mock, provider: str, out: Path, capsys) -> Path:
    """A job left running: generate with --timeout 0 saves its handle and exits 10."""
    assert main(generate(mock, provider, out, "--timeout", "0", "--quiet")) == 10
    capsys.readouterr()
    return saved_handle(out)


# -- generate -------------------------------------------------------------------------------
@INSTANT
@pytest.mark.parametrize(
    ("provider", "options", "size", "mime"),
    [
        ("segmind", ["--aspect-ratio", "16:9", "--resolution", "1K", "--format", "png"],
         (1376, 768), "image/png"),
        ("seaart", ["--aspect-ratio", "3:2", "--resolution", "1K"], (1264, 848), "image/png"),
        ("pixazo", ["--aspect-ratio", "9:16", "--format", "jpg"], (768, 1376), "image/jpeg"),
    ],
)  # fmt: skip
def test_generate_saves_the_image_and_prints_a_summary(
    nanobanana_mock, tmp_path, capsys, provider, options, size, mime
) -> None:
    assert main(generate(nanobanana_mock, provider, tmp_path, *options)) == 0
    out, err = capsys.readouterr()
    (path,) = tmp_path.glob("*_1.*")
    request_id = path.name.split("_1.")[0]
    assert path.suffix == {"image/png": ".png", "image/jpeg": ".jpg"}[mime]
    with Image.open(path) as picture:
        assert picture.size == size
    width, height = size
    handle_file = tmp_path / f"{request_id}.job.json"
    assert sorted(tmp_path.iterdir()) == sorted([path, handle_file])
    assert out.startswith(f"saved 1 image ({width}x{height} {mime}) to {path} in ")
    assert out.endswith(f"; job handle {handle_file}\n") and out.count("\n") == 1
    assert f"[{provider}] {request_id} SUCCEEDED" in err


@INSTANT
@pytest.mark.parametrize("provider", PROVIDERS)
def test_generate_json(nanobanana_mock, tmp_path, capsys, provider) -> None:
    assert main(generate(nanobanana_mock, provider, tmp_path, "--json")) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {
        "status", "provider", "model", "request_id", "images", "metrics", "elapsed_seconds",
        "handle",
    }  # fmt: skip
    assert data["handle"] == str(tmp_path / f"{data['request_id']}.job.json")
    assert data["status"] == "SUCCEEDED"
    assert (data["provider"], data["model"]) == (provider, MODEL[provider])
    (image,) = data["images"]
    extension = {"image/png": "png", "image/jpeg": "jpg"}[image["content_type"]]
    assert image["path"] == os.path.join(tmp_path, f"{data['request_id']}_1.{extension}")
    assert image["bytes"] == Path(image["path"]).stat().st_size > 100
    assert image["url"].startswith(nanobanana_mock.base_url)
    with Image.open(image["path"]) as picture:
        assert picture.size == (image["width"], image["height"])
    assert None not in data["metrics"].values()
    assert data["elapsed_seconds"] >= 0


@INSTANT
@pytest.mark.parametrize("provider", PROVIDERS)
def test_strict_finds_no_violation_in_the_mock(nanobanana_mock, tmp_path, capsys, provider) -> None:
    assert main(generate(nanobanana_mock, provider, tmp_path, "--strict")) == 0
    assert "contract violation" not in capsys.readouterr().err


@INSTANT
def test_generate_reports_the_cost_when_the_provider_does(
    nanobanana_mock, tmp_path, capsys
) -> None:
    assert main(generate(nanobanana_mock, "segmind", tmp_path, "--json")) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["cost"] > 0
    assert main(generate(nanobanana_mock, "segmind", tmp_path)) == 0
    assert ", cost $" in capsys.readouterr().out


@INSTANT
def test_params_are_parsed_as_json_when_they_parse(nanobanana_mock, tmp_path, capsys) -> None:
    ok = ["--param", "seed=42", "--param", "thinking_level=high", "--param", "web_search=true"]
    assert main(generate(nanobanana_mock, "segmind", tmp_path, *ok)) == 0
    assert main(generate(nanobanana_mock, "segmind", tmp_path, "--param", "seed=forty")) == 6
    assert "seed" in capsys.readouterr().err


@INSTANT
def test_save_handle(nanobanana_mock, tmp_path, capsys) -> None:
    handle_file = tmp_path / "job.json"
    args = generate(nanobanana_mock, "seaart", tmp_path / "out", "--save-handle", str(handle_file))
    assert main(args) == 0
    handle = JobHandle.load(handle_file)
    assert handle.provider == "seaart" and handle.base_url == nanobanana_mock.base_url
    assert (tmp_path / "out" / f"{handle.request_id}_1.png").exists()


# -- progress -------------------------------------------------------------------------------
@pytest.mark.nanobanana_mock(workers=1, queue_seconds=1, processing_seconds={"*": 10})
@pytest.mark.parametrize(
    ("provider", "queued", "running", "position"),
    [
        ("seaart", "QUEUED/IN_QUEUE", "RUNNING/IN_PROGRESS", " (position 1)"),
        ("pixazo", "QUEUED/IN_QUEUE", "RUNNING/IN_PROGRESS", " (position 1, eta 21s)"),
        ("segmind", "QUEUED", "RUNNING/PROCESSING", ""),  # Segmind tells neither
    ],
)
def test_progress_is_one_line_per_state_change(
    nanobanana_mock, tmp_path, capsys, provider, queued, running, position
) -> None:
    submit_in_background(nanobanana_mock, provider, tmp_path / "first", capsys)
    cli = Background(generate(nanobanana_mock, provider, tmp_path))
    step(nanobanana_mock, provider, 0, polls_after=3)  # queued behind the first job
    step(nanobanana_mock, provider, 1)  # the first job runs: still queued
    step(nanobanana_mock, provider, 10)  # the first is done: ours runs
    step(nanobanana_mock, provider, 5)
    nanobanana_mock.clock.advance(5)
    assert cli.join() == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3, lines
    request_id = next(tmp_path.glob("*_1.*")).name.split("_1.")[0]
    states = (
        f"{queued}{re.escape(position)}",
        f"{running}( \\(eta \\d+s\\))?",
        "SUCCEEDED/COMPLETED",
    )
    for line, state in zip(lines, states, strict=True):
        assert re.fullmatch(rf"\[{provider}\] {request_id} {state} \d+\.\ds", line), line


@INSTANT
def test_progress_on_a_tty_rewrites_one_line(nanobanana_mock, tmp_path, monkeypatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Tty())
    assert main(generate(nanobanana_mock, "seaart", tmp_path, "--json")) == 0
    err = sys.stderr.getvalue()
    assert err.startswith("\r[seaart] ") and "SUCCEEDED/COMPLETED" in err
    assert err.endswith("\x1b[K\n") and err.count("\n") == 1


@INSTANT
def test_quiet_prints_no_progress(nanobanana_mock, tmp_path, capsys) -> None:
    assert main(generate(nanobanana_mock, "pixazo", tmp_path, "--quiet")) == 0
    assert capsys.readouterr().err == ""


# -- timeout and resume ---------------------------------------------------------------------
def test_timeout_saves_the_handle_and_wait_resumes(nanobanana_mock, tmp_path, capsys) -> None:
    args = generate(nanobanana_mock, "seaart", tmp_path, "--timeout", "0.05")
    assert main(args) == 10
    handle_file = saved_handle(tmp_path)
    handle = JobHandle.load(handle_file)
    assert handle_file.name == f"{handle.request_id}.job.json"
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("nanobanana: Timeout: ")
    assert f"nanobanana wait {handle_file}" in err
    assert not list(tmp_path.glob("*.png"))

    nanobanana_mock.clock.advance(120)
    assert main(on_handle("wait", handle_file, "--out", str(tmp_path))) == 0
    assert (tmp_path / f"{handle.request_id}_1.png").exists()
    assert capsys.readouterr().out.startswith("saved 1 image")


def test_timeout_json_names_the_handle(nanobanana_mock, tmp_path, capsys) -> None:
    handle_file = tmp_path / "mine.json"
    args = generate(nanobanana_mock, "pixazo", tmp_path, "--timeout", "0", "--json")
    assert main([*args, "--save-handle", str(handle_file)]) == 10
    data = json.loads(capsys.readouterr().out)
    message = data.pop("message")
    assert isinstance(message, str) and message.strip()
    assert data == {
        "status": "ERROR",
        "error": "Timeout",
        "exit_code": 10,
        "error_type": None,
        "handle": str(handle_file),
    }
    assert JobHandle.load(handle_file).provider == "pixazo"


def test_wait_with_progress_while_the_clock_moves(nanobanana_mock, tmp_path, capsys) -> None:
    handle_file = submit_in_background(nanobanana_mock, "pixazo", tmp_path, capsys)
    cli = Background(on_handle("wait", handle_file, "--out", str(tmp_path), "--json"))
    step(nanobanana_mock, "pixazo", 0)
    step(nanobanana_mock, "pixazo", 5)
    nanobanana_mock.clock.advance(120)
    assert cli.join() == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["status"] == "SUCCEEDED"
    assert [line.split()[2] for line in err.splitlines()] == [
        "QUEUED/IN_QUEUE", "RUNNING/IN_PROGRESS", "SUCCEEDED/COMPLETED"
    ]  # fmt: skip


def test_ctrl_c_saves_the_handle(nanobanana_mock, tmp_path) -> None:
    args = generate(nanobanana_mock, "seaart", tmp_path, "--quiet")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanobanana_mock.client", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: polls(nanobanana_mock, "seaart") >= 2, "the CLI to poll", limit=15)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    handle_file = saved_handle(tmp_path)
    assert f"nanobanana wait {handle_file}" in err


# -- status, cancel, wait on saved handles --------------------------------------------------
@pytest.mark.nanobanana_mock(workers=1)
def test_cancel_a_queued_seaart_job(nanobanana_mock, tmp_path, capsys) -> None:
    handle_file = submit_in_background(nanobanana_mock, "seaart", tmp_path, capsys)
    assert main(on_handle("status", handle_file)) == 0
    assert " QUEUED/IN_QUEUE" in capsys.readouterr().out

    assert main(on_handle("cancel", handle_file)) == 0
    assert capsys.readouterr().out == "cancellation requested\n"
    assert main(on_handle("status", handle_file, "--json")) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["status"] == "CANCELLED" and status["raw_status"] == "COMPLETED"
    assert set(status) == {
        "status", "raw_status", "queue_position", "eta_seconds", "error", "error_type",
        "request_id",
    }  # fmt: skip
    assert status["request_id"] == JobHandle.load(handle_file).request_id

    assert main(on_handle("cancel", handle_file, "--json")) == 0
    assert json.loads(capsys.readouterr().out)["cancelled"] is False
    assert main(on_handle("wait", handle_file, "--out", str(tmp_path))) == 8
    assert "nanobanana: JobCancelled: " in capsys.readouterr().err


@pytest.mark.nanobanana_mock(workers=1)
def test_status_of_a_queued_job_shows_its_position(nanobanana_mock, tmp_path, capsys) -> None:
    submit_in_background(nanobanana_mock, "pixazo", tmp_path / "a", capsys)
    handle_file = submit_in_background(nanobanana_mock, "pixazo", tmp_path / "b", capsys)
    assert main(on_handle("status", handle_file, "--json")) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["status"], status["queue_position"]) == ("QUEUED", 1)


def test_base_url_overrides_the_handle(nanobanana_mock, tmp_path, capsys) -> None:
    handle_file = submit_in_background(nanobanana_mock, "seaart", tmp_path, capsys)
    data = json.loads(handle_file.read_text())
    moved = {k: v.replace(nanobanana_mock.base_url, "http://127.0.0.1:9") if isinstance(v, str)
             else v for k, v in data.items()}  # fmt: skip
    handle_file.write_text(json.dumps(moved))
    args = on_handle("status", handle_file, "--retries", "0")
    assert main(args) == 12  # nothing listens on port 9
    capsys.readouterr()
    assert main([*args, "--base-url", nanobanana_mock.base_url + "/model"]) == 0
    assert "QUEUED/IN_QUEUE" in capsys.readouterr().out


# -- exit codes -----------------------------------------------------------------------------
def test_exit_code_table() -> None:
    codes = [code for code, _, _ in EXIT_CODES]
    assert codes == [*range(14), 130]


@pytest.mark.nanobanana_mock(api_keys=["the-right-key"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_auth_error_exits_3(nanobanana_mock, tmp_path, capsys, provider) -> None:
    assert main(generate(nanobanana_mock, provider, tmp_path)) == 3
    err = capsys.readouterr().err
    assert err.startswith("nanobanana: AuthenticationError: ") and err.count("\n") == 1


@pytest.mark.nanobanana_mock(credits={"default": 0})
@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_credits_exits_4(nanobanana_mock, tmp_path, capsys, provider) -> None:
    assert main(generate(nanobanana_mock, provider, tmp_path, "--json")) == 4
    data = json.loads(capsys.readouterr().out)
    assert (data["error"], data["exit_code"], data["handle"]) == ("InsufficientCredits", 4, None)


def test_rate_limited_exits_5_after_the_retries(nanobanana_mock, tmp_path, capsys) -> None:
    nanobanana_mock.faults.http_error(429, provider="seaart", operation="submit")
    assert main(generate(nanobanana_mock, "seaart", tmp_path, "--retries", "1")) == 5
    assert nanobanana_mock.journal.count(provider="seaart", operation="submit") == 2
    assert "nanobanana: RateLimited: " in capsys.readouterr().err


@pytest.mark.parametrize("provider", PROVIDERS)
def test_invalid_request_exits_6(nanobanana_mock, tmp_path, capsys, provider) -> None:
    assert main(generate(nanobanana_mock, provider, tmp_path, "--aspect-ratio", "7:3")) == 6
    assert "aspect_ratio" in capsys.readouterr().err


@INSTANT
@pytest.mark.parametrize("provider", PROVIDERS)
def test_job_failure_exits_7(nanobanana_mock, tmp_path, capsys, provider) -> None:
    nanobanana_mock.faults.job_failure("Blocked by the filter", provider=provider)
    assert main(generate(nanobanana_mock, provider, tmp_path)) == 7
    err = capsys.readouterr().err
    assert "nanobanana: JobFailed: " in err and "Blocked by the filter" in err
    assert "resume" not in err  # a failed job has nothing to resume
    (handle_file,) = tmp_path.iterdir()  # no image; the handle tells what happened
    assert main(on_handle("status", handle_file)) == 0
    assert capsys.readouterr().out.endswith(": Blocked by the filter\n")


def test_status_of_an_unknown_job_exits_9(nanobanana_mock, tmp_path, capsys) -> None:
    for provider, model in MODEL.items():
        handle = JobHandle(provider, model, "no-such-job", nanobanana_mock.base_url)
        handle_file = handle.save(tmp_path / f"{provider}.json")
        assert main(on_handle("status", handle_file)) == 9
        err = capsys.readouterr().err
        assert "nanobanana: NotFound: " in err
        assert "no job no-such-job for this API key: it never existed there" in err
        assert "resume with" not in err


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wait_on_an_expired_job_says_it_expired_and_never_to_resume(
    nanobanana_mock, tmp_path, capsys, provider
) -> None:
    """The mock's X-Mock-Job-State tells an expired job from one that never existed: the CLI
    says the results are gone and to submit again, not to resume the handle it was given."""
    handle_file = submit_in_background(nanobanana_mock, provider, tmp_path, capsys)
    request_id = JobHandle.load(handle_file).request_id
    nanobanana_mock.clock.advance(3600)  # past the retention (one hour)
    assert main(on_handle("wait", handle_file)) == 9
    err = capsys.readouterr().err
    assert f"job {request_id} expired" in err and "submit the job again" in err, err
    assert "resume with" not in err and "never existed" not in err
    assert main(on_handle("wait", handle_file, "--json")) == 9
    data = json.loads(capsys.readouterr().out)
    assert (data["error"], data["job_state"], data["exit_code"]) == ("NotFound", "expired", 9)
    assert "resume with" not in data["message"]


def test_a_job_not_found_without_the_mocks_header_gets_a_neutral_message(
    nanobanana_mock, tmp_path, capsys
) -> None:
    """A live provider sends no X-Mock-Job-State: its 404 (here a fault rule's, which carries
    no such header) is 'expired or never existed', and still never 'resume'."""
    handle_file = submit_in_background(nanobanana_mock, "segmind", tmp_path, capsys)
    nanobanana_mock.faults.http_error(404, provider="segmind", operation="status")
    assert main(on_handle("wait", handle_file, "--retries", "0")) == 9
    err = capsys.readouterr().err
    assert "it expired, or never existed there" in err and "submit the job again" in err, err
    assert "resume with" not in err


@pytest.mark.parametrize("provider", PROVIDERS)
def test_generate_whose_job_expires_while_polled_is_not_offered_for_resuming(
    nanobanana_mock, tmp_path, capsys, provider
) -> None:
    """The handle saved when the job was accepted stays, but the error never points at it."""
    run = Background(generate(nanobanana_mock, provider, tmp_path, "--quiet"))
    wait_for(lambda: polls(nanobanana_mock, provider) >= 1, "the first poll")
    job = nanobanana_mock.jobs.list()[0]
    nanobanana_mock.jobs.force(job.id, "EXPIRED")
    assert run.join() == 9
    err = capsys.readouterr().err
    assert f"job {job.id} expired" in err and "submit the job again" in err, err
    assert "resume with" not in err and "job.json" not in err


@pytest.mark.parametrize(
    ("rule", "code", "name"),
    [
        ({"http_error": {"status": 500}}, 11, "ServerError"),
        ({"transport": {"kind": "reset", "when": "before"}}, 12, "TransportError"),
    ],
)
def test_submit_failures(nanobanana_mock, tmp_path, capsys, rule, code, name) -> None:
    nanobanana_mock.faults.add(match={"operation": "submit"}, effect=rule)
    for provider in PROVIDERS:
        assert main(generate(nanobanana_mock, provider, tmp_path)) == code
        assert f"nanobanana: {name}: " in capsys.readouterr().err
    assert nanobanana_mock.journal.count(operation="submit") == 3  # never resubmitted


def test_cancel_on_segmind_exits_13(nanobanana_mock, tmp_path, capsys) -> None:
    handle = JobHandle("segmind", "nano-banana", "x", nanobanana_mock.base_url)
    assert main(on_handle("cancel", handle.save(tmp_path / "h.json"))) == 13
    assert capsys.readouterr().err.startswith("nanobanana: NotSupported: ")


def test_usage_errors_exit_2(tmp_path, capsys, monkeypatch) -> None:
    assert main(["generate", "--provider", "seaart", "--model", "nano_banana_pro"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nanobanana: UsageError: the following arguments are required: --prompt")
    assert err.endswith("(see `nanobanana generate --help`)\n") and err.count("\n") == 1

    assert main(["status", str(tmp_path / "missing.json"), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"] == "UsageError"
    (tmp_path / "bad.json").write_text('{"provider": "seaart"}')
    assert main(["wait", str(tmp_path / "bad.json")]) == 2
    assert "a job handle needs" in capsys.readouterr().err

    monkeypatch.delenv("SEAART_API_KEY", raising=False)
    monkeypatch.delenv("SEACLOUD_API_KEY", raising=False)
    args = ["generate", "--provider", "seaart", "--model", "nano_banana_pro", "--prompt", "x"]
    assert main(args) == 2
    assert capsys.readouterr().err.startswith("nanobanana: ConfigurationError: seaart: no API key")
    # With a key, so that only the named fault can be what exits 2 (not the missing key).
    assert main([*args, "--model", "nope", "--api-key", "k"]) == 2
    assert capsys.readouterr().err.startswith(
        "nanobanana: ConfigurationError: seaart has no model 'nope'; models: "
    )
    assert main([*args, "--json", "--param", "novalue", "--api-key", "k"]) == 2
    assert json.loads(capsys.readouterr().out) == {
        "status": "ERROR",
        "error": "UsageError",
        "message": "argument --param: expected KEY=VALUE, got 'novalue'"
        " (see `nanobanana generate --help`)",
        "exit_code": 2,
        "error_type": None,
        "handle": None,
    }


def test_help_documents_the_exit_codes(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out and "10  Timeout" in out and "13  NotSupported" in out


@pytest.mark.parametrize("command", ["generate", "status", "wait", "cancel"])
def test_help_says_where_the_base_url_and_key_come_from(capsys, command: str) -> None:
    """--base-url and --api-key show their true defaults (they said none, or 'the
    provider's env variable' without naming it)."""
    assert main([command, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for adapter in ADAPTERS.values():
        assert adapter.default_base in out
        assert all(f"${name}" in out for name in adapter.key_env)
    assert "$<PROVIDER>_BASE_URL" in out
    assert {a.base_env for a in ADAPTERS.values()} == {
        f"{name.upper()}_BASE_URL" for name in ADAPTERS
    }


# -- the real entry point -------------------------------------------------------------------
@INSTANT
def test_python_dash_m(nanobanana_mock, tmp_path) -> None:
    args = generate(nanobanana_mock, "segmind", tmp_path, "--json", "--aspect-ratio", "1:1")
    done = subprocess.run(
        [sys.executable, "-m", "nanobanana_mock.client", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["status"] == "SUCCEEDED" and data["provider"] == "segmind"
    (image,) = data["images"]
    with Image.open(image["path"]) as picture:
        assert picture.size == (image["width"], image["height"]) == (1024, 1024)

    bad = subprocess.run(
        [sys.executable, "-m", "nanobanana_mock.client", *args, "--num-images", "2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2  # nano-banana-2 takes no num_images
    assert json.loads(bad.stdout)["error"] == "ConfigurationError"
