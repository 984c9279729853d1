"""The drift report: one row per distinct break, counted; a value outside an enum is breaking."""

from __future__ import annotations

import json

from nanobanana_mock.schemas.checks import BREAKING, Finding, schema_findings
from nanobanana_mock.schemas.report import Report


def finding(observed: str) -> Finding:
    return Finding(
        "segmind",
        "status",
        "GET status",
        "/requestId",
        "no such field",
        f"new field 'requestId' = {observed!r}",
        "additive",
    )


def test_the_same_break_on_many_jobs_is_one_counted_row(tmp_path) -> None:
    report = Report()
    report.add([finding("a"), finding("b"), finding("c")])
    data = report.to_json()
    assert len(data["findings"]) == 1 and data["findings"][0]["times"] == 3
    assert report.exit_code() == 0
    paths = report.write(tmp_path)
    assert json.loads(paths["json"].read_text())["breaking"] == 0
    assert "| segmind |" in paths["markdown"].read_text() and "<table>" in paths["html"].read_text()


def test_request_findings_are_always_breaking() -> None:
    found = schema_findings(
        "seaart",
        "request.nano_banana_2",
        {"prompt": "x", "aspect_ratio": "7:3"},
        operation="submit",
        request="POST submit",
        check="request",
    )
    assert [(f.pointer, f.severity) for f in found] == [("/aspect_ratio", BREAKING)]
    as_response = schema_findings(
        "seaart",
        "request.nano_banana_2",
        {"prompt": "x", "aspect_ratio": "7:3"},
        operation="submit",
        request="POST submit",
    )
    assert as_response[0].severity == BREAKING  # in an answer too: outside the enum
