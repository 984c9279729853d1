"""What the server says when it starts, and what --help says: true, and never a key."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nanobanana_mock.app import create_app
from nanobanana_mock.cli import banner, build_parser, default_text
from nanobanana_mock.config import MockConfig, config_from_env, parse_value
from nanobanana_mock.control.client import MockControl
from tests.harness import mock_process

SCENARIO = """\
settings:
  seed: 42
  time_scale: 0
  workers: 1
  api_keys: [k-scenario-secret]
faults:
  - {match: {operation: submit}, effect: {latency: {fixed: 1}}}
rate_limits:
  - rpm: 60
"""


def test_the_banner_shows_the_settings_a_scenario_gave(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    command = [sys.executable, "-m", "nanobanana_mock", "--port", "0", "--scenario", str(scenario)]
    proc = subprocess.Popen(
        [*command, "--control-token", "tok-secret"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        while not lines or lines[-1] != "Try:":
            lines.append(proc.stdout.readline().rstrip("\n"))
        lines.append(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    text = "\n".join(lines)
    assert re.match(r"nanobanana-mock serving on http://127\.0\.0\.1:\d+ \(seed 42, ", text)
    assert "(seed 42, time scale 0x, frozen)" in lines[0]
    assert f"  scenario {scenario} (1 fault rule, 1 rate limit)" in lines
    assert "  settings --workers 1" in lines
    assert "  keys     1 accepted (--api-keys); any other gets the provider's 401" in lines
    assert "loopback clients only; X-Mock-Token required" in text
    assert "x-api-key: YOUR_KEY" in text  # no key of the settings
    assert "k-scenario-secret" not in text and "tok-secret" not in text


def test_a_flag_or_variable_at_its_default_still_wins_over_the_scenario(tmp_path: Path) -> None:
    """``--seed 0``, ``--time-scale 1`` or ``MOCK_WORKERS=4`` are given, though equal to the
    defaults: the scenario's 42, 0 and 1 must not replace them, at start-up or on a reset."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    command = [sys.executable, "-m", "nanobanana_mock", "--port", "0", "--scenario", str(scenario)]
    with mock_process(
        [*command, "--seed", "0", "--time-scale", "1"],
        env={**os.environ, "MOCK_WORKERS": "4"},
        stderr=subprocess.DEVNULL,
    ) as (base, first):
        control = MockControl(base)
        settings = [control.settings()]
        control.reset()
        settings.append(control.settings())
    assert "(seed 0, time scale 1x)" in first
    for effective in settings:
        assert (effective["seed"], effective["time_scale"], effective["workers"]) == (0, 1, 4)
        assert effective["api_keys"] != []  # what no flag gave still comes from the file


def test_the_banner_says_how_each_provider_is_answered(tmp_path: Path) -> None:
    (tmp_path / "replay").mkdir()
    (tmp_path / "replay" / "pixazo.jsonl").write_text("")
    config = MockConfig(
        proxy={"segmind": "https://user:pa55word@api.segmind.com"},
        record_dir=str(tmp_path / "rec"),
        replay_dir=str(tmp_path / "replay"),
        control_open=True,
    )
    text = banner(create_app(config), 9000)
    lines = text.splitlines()
    segmind = "  Segmind  base URL http://127.0.0.1:9000/v1  proxied to https://api.segmind.com"
    assert f"{segmind}, recorded to {tmp_path / 'rec' / 'segmind.jsonl'}" in lines
    assert "  SeaArt   base URL http://127.0.0.1:9000/model  simulated" in lines
    pixazo = (
        f"  Pixazo   origin   http://127.0.0.1:9000  replayed from {tmp_path}/replay/pixazo.jsonl"
    )
    assert pixazo in lines
    assert "open to every client; no token: set --control-token" in text
    assert "pa55word" not in text and "user" not in text


def test_help_shows_the_true_default_of_every_option() -> None:
    """Each option's ``default ...`` in --help is what the mock uses when neither the flag
    nor its variable is given: written as the flag takes it, or saying what an empty
    default means."""
    effective = config_from_env({})
    fields = {f.name: f for f in dataclasses.fields(MockConfig)}
    checked = set()
    for action in build_parser()._actions:
        if action.dest not in fields:
            continue
        f = fields[action.dest]
        shown = re.search(r"default ([^\]]+)\]$", " ".join(action.help.split())).group(1)
        value = getattr(effective, f.name)
        if f.metadata.get("default_text"):
            assert shown == f.metadata["default_text"] and not value, f.name
        elif shown == "none":
            assert not value, f.name
        elif isinstance(value, bool):
            assert shown == ("on" if value else "off"), f.name
        else:
            assert parse_value(f, shown) == value, (f.name, shown, value)
        checked.add(f.name)
    assert checked == set(fields)
    assert default_text(fields["seed"]) == "0"  # it said "none"


@pytest.mark.parametrize("name", ["seed", "time_scale", "processing_jitter", "max_body_bytes"])
def test_numeric_defaults_are_written_as_numbers(name: str) -> None:
    field = next(f for f in dataclasses.fields(MockConfig) if f.name == name)
    assert re.fullmatch(r"[0-9.]+", default_text(field))


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pa55word@127.0.0.1:1/v2",  # refused for its path
        "ftp://user:pa55word@127.0.0.1:1",  # for its scheme
        "user:pa55word@127.0.0.1",  # no scheme at all
        "http://127.0.0.1:1?token=pa55word",  # for its query
        "http://127.0.0.1:1/#pa55word",
        "http://user:pa55word@127.0.0.1:1/" + "x" * 2100,  # too long for the schema
    ],
)
def test_a_refused_proxy_url_is_named_without_its_password_or_query(url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "nanobanana_mock", "--port", "0", "--proxy", f"segmind={url}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "proxy" in proc.stderr
    assert "pa55word" not in proc.stderr + proc.stdout


def test_the_banner_tells_fal_client_how_to_reach_the_https_port() -> None:
    app = create_app(MockConfig(port=0, tls_port=0))
    text = banner(app, 8080, tls=(8443, Path("/tmp/x/nanobanana-mock-ca.pem")))
    assert "  https    https://127.0.0.1:8443 (certificate from a test CA: " in text
    assert (
        "    SSL_CERT_FILE=/tmp/x/nanobanana-mock-ca.pem "
        "FAL_QUEUE_RUN_HOST=127.0.0.1:8443/fal/queue FAL_RUN_HOST=127.0.0.1:8443/fal/run"
    ) in text.splitlines()


def test_tls_port_serves_https_with_the_ca_it_prints() -> None:
    import ssl
    import urllib.request

    command = [sys.executable, "-m", "nanobanana_mock", "--port", "0", "--tls-port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        for _ in range(60):  # the banner's lines, up to the fal-client one
            line = process.stdout.readline()
            if "FAL_RUN_HOST=" in line or not line:
                break
        env = dict(pair.split("=", 1) for pair in line.split())
        ca_file = Path(env["SSL_CERT_FILE"])
        assert ca_file.is_file()
        context = ssl.create_default_context(cafile=str(ca_file))
        host = env["FAL_QUEUE_RUN_HOST"].split("/")[0]
        with urllib.request.urlopen(f"https://{host}/_mock/health", context=context) as resp:
            assert resp.status == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert not ca_file.exists()  # removed on shutdown
