"""Settings: one frozen object, reachable from flags and MOCK_* variables, checked."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from nanobanana_mock.cli import build_parser, parse_config
from nanobanana_mock.config import ConfigError, MockConfig, config_from_env
from tests.harness import mock_refuses


def test_defaults_bind_loopback_and_are_frozen() -> None:
    config = MockConfig()
    assert (config.host, config.port) == ("127.0.0.1", 8080)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]


def test_environment_then_overrides() -> None:
    env = {
        "MOCK_SEED": "42",
        "MOCK_TIME_SCALE": "0",
        "MOCK_API_KEYS": "a, b,,",
        "MOCK_RETENTION_SECONDS": "seaart=600,pixazo=900",
        "MOCK_SELF_CHECK": "yes",
    }
    config = config_from_env(env, seed=7)
    assert config.seed == 7 and config.time_scale == 0.0 and config.self_check is True
    assert config.api_keys == frozenset({"a", "b"})
    assert config.retention_for("seaart", 3600) == 600
    assert config.retention_for("segmind", 3600) == 3600


def test_flags_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_PORT", "9000")
    monkeypatch.setenv("MOCK_WORKERS", "3")
    config, _ = parse_config(
        ["--port", "9100", "--processing-seconds", "segmind/*=5,*=1", "--self-check"]
    )
    assert (config.port, config.workers, config.self_check) == (9100, 3, True)
    assert config.processing_for("segmind", "nano-banana", 14.28) == 5
    assert config.processing_for("pixazo", "nano-banana-pro", 59.09) == 1


def test_every_setting_has_a_flag() -> None:
    flags = {a.dest for a in build_parser()._actions}
    assert {f.name for f in dataclasses.fields(MockConfig)} <= flags


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"MOCK_PORT": "eighty"}, "port: 'eighty' is not a valid int"),
        ({"MOCK_PORT": "70000"}, "port: 70000 is greater than the maximum of 65535"),
        ({"MOCK_WORKERS": "0"}, "workers: 0 is less than the minimum of 1"),
        ({"MOCK_TIME_SCALE": "-2"}, "time_scale: -2.0 is less than the minimum of 0"),
        ({"MOCK_RETENTION_SECONDS": "seaart"}, "expected NAME=SECONDS"),
        ({"MOCK_RETENTION_SECONDS": "seaart=soon"}, "is not a number"),
        ({"MOCK_SELF_CHECK": "maybe"}, "not a boolean"),
    ],
)
def test_bad_settings_are_named(env: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        config_from_env(env)


def test_cli_reports_bad_settings_without_a_traceback() -> None:
    stderr = mock_refuses("--workers", "0")
    assert stderr.strip() == "nanobanana-mock: workers: 0 is less than the minimum of 1"


def test_serves_on_a_free_loopback_port_and_prints_base_urls() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanobanana_mock", "--port", "0", "--time-scale", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = [proc.stdout.readline() for _ in range(4)]
        assert banner[0].startswith("nanobanana-mock serving on http://127.0.0.1:")
        base = banner[0].split()[3]
        assert f"Segmind  base URL {base}/v1" in banner[1]
        with urllib.request.urlopen(base + "/", timeout=10) as resp:
            assert json.load(resp)["base_urls"] == {
                "segmind": f"{base}/v1",
                "seaart": f"{base}/model",
                "pixazo": base,
                "gemini": base,
                "fal": base + "/fal/queue",
            }
        with urllib.request.urlopen(base + "/_mock/health", timeout=10) as resp:
            assert json.load(resp)["ok"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_bad_scenario_file_is_reported_with_its_line(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("faults:\n  - effect:\n      http_error: {status: 418}\n")
    stderr = mock_refuses("--scenario", str(bad))
    assert "bad.yaml:3:" in stderr and "418" in stderr
    assert "Traceback" not in stderr


def test_a_bad_proxy_setting_is_reported_without_a_traceback() -> None:
    stderr = mock_refuses("--proxy", "midjourney=https://x.example")
    assert "midjourney" in stderr and "Traceback" not in stderr


def test_sigterm_shuts_down_cleanly_with_its_renderer_processes() -> None:
    """docker stop, CI and supervisors send SIGTERM: the server exits 0 and leaves no image
    renderer process behind."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanobanana_mock", "--port", "0", "--time-scale", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group: whatever it starts is in it
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().split()[3]
        headers = {"x-api-key": "k", "Content-Type": "application/json"}
        submit = urllib.request.Request(
            base + "/v2/nano-banana", json.dumps({"prompt": "x"}).encode(), headers
        )
        with urllib.request.urlopen(submit, timeout=10) as resp:
            job = json.load(resp)
        clock = urllib.request.Request(base + "/_mock/clock", b'{"advance": 100}', headers)
        urllib.request.urlopen(clock, timeout=10).close()
        result = urllib.request.Request(job["response_url"], headers=headers)
        with urllib.request.urlopen(result, timeout=10) as resp:  # renders in a worker process
            assert json.load(resp)["status"] == "COMPLETED"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        deadline = time.monotonic() + 10
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)  # the renderers exit as their pipes close
        assert not _group_alive(proc.pid), "a renderer process outlived the server"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
