"""The ``nanobanana`` command line says each time it waits to retry: one line on stderr with
the reason, the retry's number and how long it waits; ``--quiet`` silences it.

The mock's clock is frozen, so an injected ``retry_after: 0`` is ``Retry-After: 0`` and the
CLI waits only its jittered backoff (under half a second).
"""

from __future__ import annotations

import io
import re
import sys

import pytest

from nanobanana_mock.client.cli import main
from tests.nanobanana.test_cli import INSTANT, generate, on_handle

RETRY = r"nanobanana: \[{provider}\] {operation}: {reason}; retry {n} of {m} in \d+\.\ds \({why}\)"


def retry_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "; retry " in line]


@INSTANT
@pytest.mark.parametrize("provider", ["segmind", "pixazo"])
def test_a_rate_limited_submit_prints_why_and_how_long(
    nanobanana_mock, tmp_path, capsys, provider
) -> None:
    nanobanana_mock.faults.http_error(
        429, retry_after=0, provider=provider, operation="submit", first=1
    )
    assert main(generate(nanobanana_mock, provider, tmp_path)) == 0
    [line] = retry_lines(capsys.readouterr().err)
    why = r"the provider asked for 0\.0s"  # Segmind's reset-at: up to the next second
    why = r"the provider asked for [01]\.\ds" if provider == "segmind" else why
    reason = r"rate limited \(HTTP 429: [^)]+\)"
    expected = RETRY.format(provider=provider, operation="submit", reason=reason, n=1, m=5, why=why)
    assert re.fullmatch(expected, line), line


@INSTANT
def test_a_rate_limited_poll_prints_its_line_between_the_progress(
    nanobanana_mock, tmp_path, capsys
) -> None:
    nanobanana_mock.faults.http_error(429, provider="seaart", operation="status", first=1)
    assert main(generate(nanobanana_mock, "seaart", tmp_path, "--retries", "2")) == 0
    [line] = retry_lines(capsys.readouterr().err)
    reason = r"rate limited \(HTTP 429: Rate limit exceeded, please try again later\)"
    expected = RETRY.format(
        provider="seaart", operation="status", reason=reason, n=1, m=2, why="backing off"
    )
    assert re.fullmatch(expected, line), line  # SeaArt's 429 says no wait: the backoff


@INSTANT
def test_a_retry_line_ends_an_open_progress_line_on_a_tty(
    nanobanana_mock, tmp_path, monkeypatch
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    nanobanana_mock.faults.http_error(503, retry_after=0, operation="result", first=1)
    monkeypatch.setattr(sys, "stderr", Tty())
    assert main(generate(nanobanana_mock, "seaart", tmp_path)) == 0  # status, then result
    err = sys.stderr.getvalue()
    [line] = retry_lines(err)
    assert err.startswith("\r[seaart] ") and err.endswith(f"\x1b[K\n{line}\n")


def test_a_refused_connection_prints_each_retry(tmp_path, capsys) -> None:
    argv = [
        *("generate", "--provider", "segmind", "--model", "nano-banana", "--prompt", "x"),
        *("--base-url", "http://127.0.0.1:9", "--api-key", "k", "--out", str(tmp_path)),
        *("--retries", "2"),
    ]
    assert main(argv) == 12
    err = capsys.readouterr().err
    lines = retry_lines(err)
    for n, line in enumerate(lines, start=1):
        reason = r"cannot connect: .*"
        expected = RETRY.format(
            provider="segmind", operation="submit", reason=reason, n=n, m=2, why="backing off"
        )
        assert re.fullmatch(expected, line), line
    assert len(lines) == 2 and err.splitlines()[-1].startswith("nanobanana: TransportError: ")


def test_status_prints_its_retries_too(nanobanana_mock, tmp_path, capsys) -> None:
    from nanobanana_mock.client import JobHandle

    nanobanana_mock.faults.http_error(502, provider="segmind", operation="status", first=1)
    handle = JobHandle("segmind", "nano-banana", "no-such-job", nanobanana_mock.base_url)
    assert main(on_handle("status", handle.save(tmp_path / "h.json"))) == 9
    [line] = retry_lines(capsys.readouterr().err)
    assert line.startswith("nanobanana: [segmind] status: HTTP 502: ")


@INSTANT
def test_quiet_prints_no_retry_line(nanobanana_mock, tmp_path, capsys) -> None:
    nanobanana_mock.faults.http_error(429, retry_after=0, operation="submit", first=1)
    assert main(generate(nanobanana_mock, "pixazo", tmp_path, "--quiet")) == 0
    assert capsys.readouterr().err == ""


def test_giving_up_names_the_wait_the_provider_asked_for(nanobanana_mock, tmp_path, capsys) -> None:
    nanobanana_mock.faults.http_error(429, retry_after=600, operation="submit")
    assert main(generate(nanobanana_mock, "pixazo", tmp_path)) == 5  # over max_wait: at once
    err = capsys.readouterr().err
    assert retry_lines(err) == []
    assert err.startswith("nanobanana: RateLimited: ")
    assert err.rstrip().endswith("; the provider asked to retry after 600s")
