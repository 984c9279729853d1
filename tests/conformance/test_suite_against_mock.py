"""The suite passes against the mock, and catches each drift scenario with the right finding."""

from __future__ import annotations

import json

import pytest

from nanobanana_mock.schemas.checks import ADDITIVE, BREAKING

from .conftest import SCENARIOS, Runner

# scenario -> (exit code, findings that must be in the report: operation, pointer, severity,
# check, a piece of the expected text, then pieces of the observed text, if any)
NEVER_ENDS = "never reached a terminal state after"
EXPECTED = {
    "segmind-renamed-request-id": (
        1,
        [
            ("submit", "/request_id", BREAKING, "schema", "required field"),
            ("submit", "/requestId", ADDITIVE, "schema", "no such field"),
        ],
    ),
    "seaart-extra-status-field": (0, [("status", "/eta", ADDITIVE, "schema", "no such field")]),
    "pixazo-width-as-string": (
        1,
        [("result", "/images/0/width", BREAKING, "schema", "type integer")],
    ),
    "seaart-result-200-while-running": (
        1,
        [("result", "", BREAKING, "http_status", "HTTP 202 for IN_PROGRESS")],
    ),
    "segmind-failed-served-200": (
        1,
        [("status", "", BREAKING, "http_status", "HTTP 422 for FAILED")],
    ),
    "segmind-back-to-processing": (
        1,
        [("status", None, BREAKING, "transition", "after COMPLETED: to stay terminal")],
    ),
    "seaart-half-size-images": (1, [("image", "", BREAKING, "image", "176x1464 pixels")]),
    "segmind-status-outside-lifecycle": (
        1,
        [
            (
                "status",
                "/status",
                BREAKING,
                "schema",
                '["COMPLETED", "FAILED", "PROCESSING"',
                "RUNNING",
            ),
            (
                "status",
                None,
                BREAKING,
                "transition",
                '["COMPLETED", "FAILED", "PROCESSING"',
                "RUNNING",
            ),
        ],
    ),
    "seaart-status-outside-lifecycle": (
        1,
        [
            (
                "status",
                "/status",
                BREAKING,
                "schema",
                '["COMPLETED", "IN_PROGRESS", "IN_QUEUE"]',
                "RUNNING",
            ),
            (
                "status",
                None,
                BREAKING,
                "transition",
                '["COMPLETED", "IN_PROGRESS", "IN_QUEUE"]',
                "RUNNING",
            ),
        ],
    ),
    "pixazo-status-outside-lifecycle": (
        1,
        [
            (
                "result",
                "/status",
                BREAKING,
                "schema",
                '["COMPLETED", "FAILED", "IN_PROGRESS"',
                "RUNNING",
            ),
            (
                "result",
                None,
                BREAKING,
                "transition",
                '["COMPLETED", "FAILED", "IN_PROGRESS"',
                "RUNNING",
            ),
        ],
    ),
    "segmind-never-completes": (
        1,
        [
            (
                "status",
                "/status",
                BREAKING,
                "lifecycle",
                "(COMPLETED or FAILED)",
                NEVER_ENDS,
                "'PROCESSING'",
            )
        ],
    ),
    "seaart-never-completes": (
        1,
        [("status", "/status", BREAKING, "lifecycle", "(COMPLETED)", NEVER_ENDS, "'IN_QUEUE'")],
    ),
    "pixazo-never-completes": (
        1,
        [
            (
                "result",
                "/status",
                BREAKING,
                "lifecycle",
                "(COMPLETED or FAILED)",
                NEVER_ENDS,
                "'IN_PROGRESS'",
            )
        ],
    ),
    "gemini-renamed-inline-data": (
        1,
        [
            (
                "sync_generate",
                "/candidates/0/content/parts/1/inline_data",
                ADDITIVE,
                "schema",
                "no such field",
            ),
            ("sync_generate", "", BREAKING, "image", "1 image(s)", "0 image(s)"),
        ],
    ),
    "gemini-half-size-images": (
        1,
        [("image", "", BREAKING, "image", "256x1024 pixels", "128x512 pixels")],
    ),
    "gemini-finish-reason-outside-enum": (
        1,
        [
            (
                "sync_generate_stable",
                "/candidates/0/finishReason",
                BREAKING,
                "schema",
                '"STOP", "MAX_TOKENS"',
                "FINISHED",
            ),
            (
                "sync_generate_stable",
                "/candidates/0/finishReason",
                BREAKING,
                "finish_reason",
                "'STOP'",
                "'FINISHED'",
            ),
        ],
    ),
    "gemini-listing-renamed": (
        1,
        [
            ("batch_list", "/operations", BREAKING, "lifecycle", "listed (within", "not listed"),
            ("batch_list", "/batchJobs", ADDITIVE, "schema", "no such field"),
        ],
    ),
    "gemini-batch-never-ends": (
        1,
        [
            (
                "batch_get",
                "/metadata/state",
                BREAKING,
                "lifecycle",
                "(BATCH_STATE_CANCELLED or BATCH_STATE_FAILED or BATCH_STATE_SUCCEEDED)",
                NEVER_ENDS,
                "'BATCH_STATE_RUNNING'",
            )
        ],
    ),
    "gemini-generate-never-answers": (
        1,
        [
            (
                "sync_generate",
                "",
                BREAKING,
                "lifecycle",
                "an answer within 350 s",
                "no answer after 350 s: the call was still waiting",
            )
        ],
    ),
    "gemini-batch-state-outside-lifecycle": (
        1,
        [
            (
                "batch_get",
                "/metadata/state",
                BREAKING,
                "schema",
                '["BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"',
                "BATCH_STATE_ACTIVE",
            ),
            (
                "batch_get",
                None,
                BREAKING,
                "transition",
                '["BATCH_STATE_CANCELLED", "BATCH_STATE_FAILED"',
                "BATCH_STATE_ACTIVE",
            ),
        ],
    ),
    "fal-result-200-while-running": (
        1,
        [("result", "", BREAKING, "http_status", "HTTP 202 for IN_")],
    ),
    "fal-status-outside-lifecycle": (
        1,
        [
            ("status", "/status", BREAKING, "schema", '["COMPLETED", "IN_PROGRESS"', "RUNNING"),
            ("status", None, BREAKING, "transition", '["COMPLETED", "IN_PROGRESS"', "RUNNING"),
        ],
    ),
    "fal-never-completes": (
        1,
        [("status", "/status", BREAKING, "lifecycle", "(COMPLETED)", NEVER_ENDS, "'IN_QUEUE'")],
    ),
    "fal-width-as-string": (1, [("result", "/images/0/width", BREAKING, "schema", "type integer")]),
    "fal-renamed-request-id": (
        1,
        [
            ("submit", "/request_id", BREAKING, "schema", "required field"),
            ("submit", "/requestId", ADDITIVE, "schema", "no such field"),
        ],
    ),
}

# scenario -> the checks its run selects (pytest -k), where the whole suite would only repeat
# itself: the checks the drift reaches, on few models (each Gemini check renders real images)
SELECT = {
    "gemini-renamed-inline-data": "answers_its_image and lite",
    "gemini-half-size-images": "answers_its_image and gemini-3.1-flash-image-sync",
    "gemini-finish-reason-outside-enum": "answers_its_image and lite",
    "gemini-batch-never-ends": "batch and not listing",
    "gemini-generate-never-answers": "answers_its_image and lite",
    "gemini-batch-state-outside-lifecycle": "batch and not listing",
    "gemini-listing-renamed": "listing",
}


def test_every_drift_scenario_has_an_expectation() -> None:
    assert {path.stem for path in SCENARIOS.glob("*.json")} == set(EXPECTED)
    assert set(SELECT) <= set(EXPECTED)


def test_the_suite_passes_against_the_mock_for_every_provider(run_suite: Runner) -> None:
    run = run_suite()
    assert run.code == 0, run.output
    report = run.report
    assert report["target"] == "mock"
    assert report["breaking"] == 0
    assert report["findings"] == []
    assert set(report["summary"]) == {"segmind", "seaart", "pixazo", "fal", "gemini"}
    assert all(row["checks"] > 0 for row in report["summary"].values())
    for name in ("drift.md", "drift.html"):
        assert (run.report_dir / name).is_file()
    assert "verdict: conformant" in run.output


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_a_drift_scenario_is_caught(run_suite: Runner, scenario: str) -> None:
    code, wanted = EXPECTED[scenario]
    path = SCENARIOS / f"{scenario}.json"
    provider = scenario.split("-")[0]
    select = ["--", "-k", SELECT[scenario]] if scenario in SELECT else []
    run = run_suite("--provider", provider, "--scenario", str(path), *select)
    assert run.code == code, run.output
    assert "tool error" not in run.output  # a finding, never a check that could not judge
    found = run.findings
    assert {f["provider"] for f in found} == {provider}
    for operation, pointer, severity, check, expected, *observed in wanted:
        assert any(
            f["operation"] == operation
            and (pointer is None or f["pointer"] == pointer)
            and f["severity"] == severity
            and f["check"] == check
            and expected in f["expected"]
            and all(piece in f["observed"] for piece in observed)
            for f in found
        ), json.dumps(found, indent=1)
    # precise: nothing but the drift is reported
    kinds = {(f["check"], f["severity"]) for f in found}
    assert kinds == {(check, severity) for _, _, severity, check, *_ in wanted}
    assert run.report["breaking"] == sum(f["severity"] == BREAKING for f in found)
    verdict = "BREAKING DRIFT" if code == 1 else "conformant"
    assert run.report["verdict"].startswith(verdict) and f"verdict: {verdict}" in run.output
