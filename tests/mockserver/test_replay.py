"""A scenario replayed twice with the same seed yields the identical journal."""

from __future__ import annotations

from nanobanana_mock import scenario_files
from tests.harness import Mock
from tests.mockserver.test_faults import SUBMIT

SCENARIOS = scenario_files.EXAMPLES


async def drive(mock: Mock) -> list[dict]:
    """A fixed client: submits and polls on all three providers while time passes."""
    for step in range(12):
        for provider in ("segmind", "seaart", "pixazo"):
            method, path, body = SUBMIT[provider]
            prompt = "something forbidden" if step % 4 == 0 else f"step {step}"
            resp = await mock.client.request(
                method, path, json={**body, "prompt": prompt}, headers=_key(provider)
            )
            if resp.status == 200 and provider == "segmind":
                rid = (await resp.json())["request_id"]
                await mock.client.get(f"/v2/requests/{rid}/status", headers=_key(provider))
        mock.advance(15)
    resp = await mock.client.get("/_mock/journal")
    return (await resp.json())["entries"]


def _key(provider: str) -> dict[str, str]:
    from tests.harness import KEYS

    return KEYS[provider]


async def test_replaying_a_scenario_gives_the_identical_journal(mock_factory) -> None:
    scenario = str(SCENARIOS / "flaky-segmind.yaml")
    first = await drive(await mock_factory(scenario=scenario, seed=21))
    second = await drive(await mock_factory(scenario=scenario, seed=21))
    other = await drive(await mock_factory(scenario=scenario, seed=22))
    assert first == second
    assert any(e["fault"] for e in first)  # the scenario did something
    assert first != other  # and the seed matters
