"""One bad scenario file, the same ``file:line:column: path: message`` lines on every way in:
the mock's command line (``--scenario``), the control plane (``MockControl.reset(scenario=
path)``), the conformance suite (``--scenario``) and the pytest marker (``scenario=``). They
all read it with the contracts' one located loader and check it with the one scenario check."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanobanana_mock.conformance.options import UsageError
from nanobanana_mock.conformance.options import load_scenario as load_drift_scenario
from nanobanana_mock.control.client import ControlError
from nanobanana_mock.scenario import ScenarioError, load_scenario
from tests.harness import mock_refuses

pytest_plugins = ["pytester"]

BAD = """\
settings:
  seed: -1
  sed: 1
faults:
  - match: {provider: segmnd}
    effect: {http_error: {status: 418}}
"""


@pytest.fixture(scope="module")
def bad_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenarios") / "bad.yaml"
    path.write_text(BAD, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lines(bad_file: Path) -> list[str]:
    """The problems, as the mock's own loader names them."""
    with pytest.raises(ScenarioError) as caught:
        load_scenario(bad_file)
    found = caught.value.problems
    assert len(found) == 4, found  # seed, sed, provider, status: each in its place
    assert found[0] == f"{bad_file}:2:9: settings.seed: -1 is less than the minimum of 0"
    assert found[1].startswith(f"{bad_file}:3:3: settings.sed: unknown key (did you mean ")
    return found


def test_the_command_line(bad_file: Path, lines: list[str]) -> None:
    stderr = mock_refuses("--scenario", str(bad_file))
    assert [line for line in stderr.splitlines() if line.startswith(str(bad_file))] == lines


def test_the_control_plane(nanobanana_mock, bad_file: Path, lines: list[str]) -> None:
    with pytest.raises(ControlError) as caught:
        nanobanana_mock.control.reset(scenario=bad_file)
    assert caught.value.status == 400
    assert caught.value.body == {"error": "invalid scenario", "problems": lines}


def test_the_conformance_suite(bad_file: Path, lines: list[str]) -> None:
    with pytest.raises(UsageError) as caught:
        load_drift_scenario(str(bad_file))
    assert str(caught.value) == "--scenario " + "; ".join(lines)


def test_the_pytest_marker(pytester: pytest.Pytester, bad_file: Path, lines: list[str]) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.nanobanana_mock(scenario={str(bad_file)!r})
        def test_bad(nanobanana_mock):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(errors=1)
    output = result.stdout.lines
    assert all(any(line in shown for shown in output) for line in lines), output
