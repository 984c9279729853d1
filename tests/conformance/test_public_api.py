"""The conformance modules' public surface is pinned (STYLE rule 8)."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "nanobanana_mock.conformance.blocking": [
        "DEADLINE_FACTOR",
        "FINISHED",
        "FINISH_POINTER",
        "QUEUE_ALLOWANCE",
        "batch_body",
        "batch_id",
        "batch_images",
        "check_images",
        "check_refused",
        "create_batch",
        "deadline",
        "finding",
        "finish_reason",
        "images_of",
        "send_blocking",
        "unknown_batch_id",
        "wire_body",
    ],
    "nanobanana_mock.conformance.cli": ["SUITE", "USAGE", "build_parser", "main", "pytest_args"],
    "nanobanana_mock.conformance.cost": [
        "Budget",
        "Case",
        "Plan",
        "SpendingRefused",
        "cases",
        "cheapest",
        "format_plan",
        "plan",
    ],
    "nanobanana_mock.conformance.exchange": ["Answer", "Http", "TargetError"],
    "nanobanana_mock.conformance.facts": [
        "INVALID_KINDS",
        "documented_body",
        "documented_example",
        "documented_invalid",
        "documented_requests",
        "invalid_body",
        "unknown_request_id",
        "variants",
    ],
    "nanobanana_mock.conformance.options": [
        "DEFAULT_REPORT_DIR",
        "RunOptions",
        "UsageError",
        "live_problems",
        "load_scenario",
    ],
    "nanobanana_mock.conformance.outcome": [
        "BREAKING_DRIFT",
        "CONFORMANT",
        "INTERRUPTED",
        "NOTHING_CHECKED",
        "TOOL_ERROR",
        "USAGE",
        "Outcome",
        "Tally",
        "decide",
    ],
    "nanobanana_mock.conformance.probe": ["DEFAULT_KEY", "URL_FIELDS", "Probe"],
    "nanobanana_mock.conformance.target": [
        "MOCK_KEY",
        "MOCK_SEED",
        "WRONG_KEY",
        "LiveTarget",
        "MockTarget",
        "Target",
        "live_endpoints",
        "mock_config",
    ],
}


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_api(name: str) -> None:
    module = importlib.import_module(name)
    assert sorted(module.__all__) == sorted(PUBLIC[name])
    for attribute in module.__all__:
        assert getattr(module, attribute) is not None
