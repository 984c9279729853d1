"""Prices, plans and the spending cap; scenario files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nanobanana_mock import schemas
from nanobanana_mock.conformance import cost
from nanobanana_mock.conformance.facts import variants
from nanobanana_mock.conformance.options import UsageError, load_scenario, parse_providers

MODELS = [(p, m) for p in schemas.PROVIDERS for m in schemas.load(p, "api")["models"]]


@pytest.mark.parametrize(("provider", "model"), MODELS)
def test_the_lifecycle_request_is_the_cheapest_with_an_explicit_ratio(
    provider: str, model: str
) -> None:
    info = schemas.load(provider, "api")["models"][model]
    body = cost.cheapest(provider, model)
    planned = cost.plan(provider, model, body)
    assert planned.price == min(info["price_usd"].values())
    assert planned.count == 1 and planned.size is not None
    if info["fields"]["aspect_ratio"]:
        assert body[info["fields"]["aspect_ratio"][0]] not in (None, "auto")


def test_a_plan_follows_the_request_then_the_defaults_then_the_fallback() -> None:
    explicit = cost.plan("segmind", "nano-banana-pro", {"aspect_ratio": "21:9"})
    assert explicit.aspect_ratio == "21:9" and explicit.resolution == "4K"  # schema default
    assert explicit.size == (6336, 2688) and explicit.price == 0.27
    fal = cost.plan("pixazo", "nano-banana-pro", {"num_images": 4, "resolution": "2K"})
    assert fal.count == 4 and fal.price == pytest.approx(4 * 0.045)
    seaart = cost.plan("seaart", "nano_banana_pro", {"prompt": "x"})
    assert seaart.aspect_ratio == "1:1"  # api.json fallback: the schema has no default


def test_the_budget_refuses_a_charge_over_its_cap() -> None:
    budget = cost.Budget(0.10)
    budget.spend("pixazo", 0.045)
    budget.spend("pixazo", 0.045)
    with pytest.raises(cost.SpendingRefused, match="exceed --max-spend"):
        budget.spend("pixazo", 0.045)
    assert budget.total == pytest.approx(0.09)
    unlimited = cost.Budget(None)
    unlimited.spend("segmind", 100.0)
    assert unlimited.spent["segmind"] == 100.0


@pytest.mark.parametrize(
    "content",
    [
        {"faults": [{"effect": {"drift": {"status": 200}}}]},
        [{"effect": {"drift": {"status": 200}}}],
        {"effect": {"drift": {"status": 200}}},
    ],
    ids=["scenario", "rule-list", "one-rule"],
)
def test_a_scenario_is_a_scenario_a_rule_list_or_one_rule(tmp_path: Path, content: object) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(content))
    assert load_scenario(str(path)) == {"faults": [{"effect": {"drift": {"status": 200}}}]}


def test_a_broken_scenario_or_provider_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"faults": [{"effect": {}}]}')
    with pytest.raises(UsageError, match=r"s\.json:1:\d+: faults\[0\]\.effect: "):
        load_scenario(str(path))
    with pytest.raises(UsageError, match=r"(?i)no such file"):
        load_scenario(str(tmp_path / "missing.json"))
    with pytest.raises(UsageError, match="unknown provider"):
        parse_providers(["segmind,fall"])
    assert parse_providers(["pixazo", "segmind"]) == ("segmind", "pixazo")
    assert parse_providers(None) == schemas.PROVIDERS


@pytest.mark.parametrize(
    ("needs", "providers"),
    [
        ("sync_generate", {"segmind", "gemini"}),
        ("batch_create", {"gemini"}),
        (("submit", "cancel"), {"seaart", "fal"}),
        (("sync_generate", "submit"), {"segmind"}),
    ],
)
def test_needs_keeps_the_providers_with_every_operation_named(needs, providers) -> None:
    found = cost.cases(schemas.PROVIDERS, "provider", needs)
    assert {case.provider for case in found} == providers
    assert len(found) == len(providers)  # one case per provider


def test_an_operation_s_variants_are_its_twins_on_other_paths() -> None:
    assert variants("gemini", "sync_generate") == ["sync_generate", "sync_generate_stable"]
    assert variants("gemini", "batch_get") == ["batch_get", "batch_get_stable"]
    assert variants("segmind", "sync_generate") == ["sync_generate"]
    assert variants("pixazo", "sync_generate") == []
