"""A bounded schemathesis run against the mock: every check, every phase, all providers, one
operation of each kind (``fuzz/run.py --distinct``).

`make fuzz` runs every operation with many more examples.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nanobanana_mock import schemas

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("provider", schemas.PROVIDERS)
def test_bounded_schemathesis_run_passes(provider: str) -> None:
    """One provider's run (a test each, so the workers share them out)."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "fuzz" / "run.py"),
            "--max-examples",
            "3",
            "--seed",
            "7",
            "--distinct",
            "--provider",
            provider,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert f"== schemathesis: {provider}" in proc.stdout
    assert proc.stdout.count("passed") >= 3


def test_the_bounded_run_keeps_one_operation_of_each_kind() -> None:
    """``--distinct`` drops only what runs the same handler on the same schemas: Gemini's /v1/
    twins, model ids sharing a request schema, and a job route repeated per model (a job's
    status is read alike whatever model's path it is under); Segmind's /v1 sync call and /v2
    submit differ in their answers and are both kept. Every kind of operation stays."""
    sys.path.insert(0, str(ROOT / "fuzz"))
    try:
        import run as fuzz_run
    finally:
        sys.path.remove(str(ROOT / "fuzz"))
    from nanobanana_mock.openapi import openapi_document

    for provider in schemas.PROVIDERS:
        document = openapi_document(provider)
        every = {o["operationId"] for m in document["paths"].values() for o in m.values()}
        kept = set(fuzz_run.distinct(provider))
        assert kept <= every
        kinds = {op.partition(".")[0].removesuffix("_stable") for op in every}
        assert {op.partition(".")[0] for op in kept} == kinds, provider
        if provider in ("segmind", "pixazo"):
            assert kept == every, provider
    models = schemas.load("gemini", "api")["models"]
    requests = {info["request"] for info in models.values()}
    kept_gemini = fuzz_run.distinct("gemini")
    generated = sorted(
        op.partition(".")[2] for op in kept_gemini if op.startswith("sync_generate.")
    )
    assert generated == sorted(
        min(m for m, info in models.items() if info["request"] == r) for r in requests
    )
    assert not [op for op in kept_gemini if "_stable" in op]
    assert {"batch_get", "batch_cancel", "batch_list", "batch_delete"} <= set(kept_gemini)
    assert {"status.nano-banana", "result.nano-banana", "cancel.nano-banana"} <= set(
        fuzz_run.distinct("fal")
    )
