"""Schemathesis hooks for fuzzing the mock: two custom checks.

Pixazo's gateway is Azure API Management, which matches operations on method and path
together: a method an operation does not declare is simply "no such operation", answered
404 ``{"error": "Endpoint not found"}`` (the error table of Pixazo's model page, see
docs/providers.md#pixazo), not 405. The built-in ``unsupported_method`` check expects 405,
so for Pixazo paths it is replaced by this check, which holds the mock to the gateway's
documented answer instead of skipping the case.

Google answers a key it does not know with 400 INVALID_ARGUMENT (ErrorInfo reason
API_KEY_INVALID), not 401, and a request with no key with 403 PERMISSION_DENIED. The built-in
``ignored_auth`` check expects 401 or 403, so for Gemini's paths it is replaced by
``google_key_rejection``, which sends the accepted request again without its key and with a
wrong one and holds the mock to those two answers.
"""

from __future__ import annotations

import schemathesis
from schemathesis.generation.meta import CoveragePhaseData, CoverageScenario

PIXAZO_PREFIX = "/nano-banana-pro-770/"
GEMINI_PREFIXES = ("/v1beta/models/", "/v1/models/", "/v1beta/batches", "/v1/batches")
GEMINI_KEY = "x-goog-api-key"


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


@schemathesis.check
def google_key_rejection(ctx: object, response: object, case: object) -> bool | None:
    """An accepted Gemini request, sent again with no key (403 PERMISSION_DENIED) and with a
    wrong one (400 INVALID_ARGUMENT, reason API_KEY_INVALID)."""
    if not case.operation.path.startswith(GEMINI_PREFIXES):  # type: ignore[attr-defined]
        return None
    if not 200 <= response.status_code < 300:  # type: ignore[attr-defined]
        return None
    for key, status, word in (
        ("", 403, "PERMISSION_DENIED"),
        ("wrong-key", 400, "API_KEY_INVALID"),
    ):
        answer = case.call(headers={GEMINI_KEY: key})  # type: ignore[attr-defined]
        if answer.status_code != status or word not in answer.text:
            raise AssertionError(
                f"{case.operation.path} with key {key!r} answered {answer.status_code}; "  # type: ignore[attr-defined]
                f"Google answers {status} {word}"
            )
    return True
