"""``--scenario`` takes a file or the name of a packaged drift (or example) scenario."""

from __future__ import annotations

import pytest

from nanobanana_mock.conformance.options import DRIFT_SCENARIOS, UsageError, load_scenario


@pytest.mark.parametrize("path", sorted(DRIFT_SCENARIOS.glob("*.json")), ids=lambda p: p.stem)
def test_every_drift_scenario_loads_by_name(path) -> None:
    assert load_scenario(path.stem) == load_scenario(str(path))


def test_an_example_scenario_loads_by_name() -> None:
    assert load_scenario("flaky-segmind")["faults"]


def test_an_unknown_name_is_refused_listing_the_packaged_ones() -> None:
    with pytest.raises(UsageError) as caught:
        load_scenario("segmind-renamed-request")
    message = str(caught.value)
    assert "segmind-renamed-request:" in message
    assert "segmind-renamed-request-id" in message and "flaky-segmind" in message
