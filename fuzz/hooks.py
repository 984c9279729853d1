"""Schemathesis hooks for fuzzing the mock: one custom check.

Pixazo's gateway is Azure API Management, which matches operations on method and path
together: a method an operation does not declare is simply "no such operation", answered
404 ``{"error": "Endpoint not found"}`` (the error table of Pixazo's model page, see
docs/providers.md#pixazo), not 405. The built-in ``unsupported_method`` check expects 405,
so for Pixazo paths it is replaced by this check, which holds the mock to the gateway's
documented answer instead of skipping the case.
"""

from __future__ import annotations

import schemathesis
from schemathesis.generation.meta import CoveragePhaseData, CoverageScenario

PIXAZO_PREFIX = "/nano-banana-pro-770/"


@schemathesis.check
def gateway_method_rejection(ctx: object, response: object, case: object) -> bool | None:
    """An undeclared method on a Pixazo path gets APIM's 404 "Endpoint not found"."""
    meta = case.meta  # type: ignore[attr-defined]
    if meta is None or not isinstance(meta.phase.data, CoveragePhaseData):
        return None
    if meta.phase.data.scenario != CoverageScenario.UNSPECIFIED_HTTP_METHOD:
        return None
    if not case.operation.path.startswith(PIXAZO_PREFIX):  # type: ignore[attr-defined]
        return None
    method = response.request.method  # type: ignore[attr-defined]
    if method in ("HEAD", "OPTIONS"):
        return None
    if response.status_code != 404 or response.json() != {"error": "Endpoint not found"}:  # type: ignore[attr-defined]
        raise AssertionError(
            f"{method} {case.operation.path} answered {response.status_code}; "  # type: ignore[attr-defined]
            'the APIM gateway answers 404 {"error": "Endpoint not found"}'
        )
    return True
