"""Every provider error body maps to the right class, at the one mapping place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nanobanana_mock import client as nanobanana
from nanobanana_mock import schemas
from nanobanana_mock.client import (
    ApiError,
    AuthenticationError,
    InsufficientCredits,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServerError,
)
from nanobanana_mock.client.errors import error_from_response, message_of, retry_after_of
from tests.harness import Mock
from tests.nanobanana.conftest import MODEL, PARAMS

EXPECTED = {
    400: InvalidRequest,
    401: AuthenticationError,
    402: InsufficientCredits,
    403: AuthenticationError,
    404: NotFound,
    410: NotFound,
    413: InvalidRequest,
    415: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
    500: ServerError,
    502: ServerError,
    503: ServerError,
    504: ServerError,
}


def declared() -> list[tuple[str, str, int]]:
    cases = []
    for provider in schemas.PROVIDERS:
        for operation, spec in schemas.load(provider, "api")["operations"].items():
            for code, response in spec["responses"].items():
                if int(code) >= 400 and response.get("schema") == "error":
                    cases.append((provider, operation, int(code)))
    return cases


def expected(provider: str, status: int) -> type[ApiError]:
    if (provider, status) in (("segmind", 406), ("fal", 403)):
        return (
            InsufficientCredits  # the credits message; see test_segmind_406_is_read_by_its_message
        )
    return EXPECTED[status]


def test_every_declared_error_code_has_a_class() -> None:
    for provider, operation, status in declared():
        assert status in EXPECTED or (provider, status) == ("segmind", 406), (
            provider,
            operation,
            status,
        )


@pytest.mark.parametrize(
    ("provider", "status"), sorted({(p, s) for p, op, s in declared() if op == "submit"})
)
async def test_injected_errors_raise_the_right_class(
    make_client, mock: Mock, provider: str, status: int
) -> None:
    resp = await mock.client.post(
        "/_mock/faults",
        json={
            "match": {"operation": "submit"},
            "effect": {"http_error": {"status": status, "retry_after": 1}},
        },
    )
    assert resp.status == 201
    with pytest.raises(ApiError) as caught:
        await make_client(provider).submit(MODEL[provider], **PARAMS[provider])
    assert type(caught.value) is expected(provider, status)
    assert caught.value.status == status
    assert caught.value.message and caught.value.provider == provider


def _is_error_example(path: Path) -> bool:
    example = json.loads(path.read_text())
    status = example.get("http_status") or 0
    return example["schema"] == "error" and example.get("valid", True) and status >= 400


EXAMPLES = [
    (provider, path)
    for provider in schemas.PROVIDERS
    for path in sorted((Path(schemas.__file__).parent / provider / "examples").glob("*.json"))
    if _is_error_example(path)
]


@pytest.mark.parametrize(("provider", "path"), EXAMPLES, ids=[p.name for _, p in EXAMPLES])
def test_every_documented_error_example_maps(provider: str, path: Path) -> None:
    example = json.loads(path.read_text())
    status = example["http_status"]
    error = error_from_response(provider, status, example["instance"], {})
    assert isinstance(
        error,
        expected(provider, status) if status != 406 else (InsufficientCredits, InvalidRequest),
    )
    assert error.message and not error.message.startswith("HTTP ")


def test_segmind_406_is_read_by_its_message() -> None:
    assert isinstance(
        error_from_response("segmind", 406, {"error": "Insufficient credits"}, {}),
        InsufficientCredits,
    )
    assert isinstance(
        error_from_response("segmind", 406, {"error": "Invalid content type"}, {}), InvalidRequest
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": "x"}, "x"),
        (
            {"error": {"code": "UNAUTHORIZED", "message": "token required"}, "request_id": "r"},
            "token required",
        ),
        ({"detail": "App not found: x"}, "App not found: x"),
        (
            {"detail": [{"loc": ["body", "prompt"], "msg": "field required", "type": "required"}]},
            "prompt: field required",
        ),
        ({"statusCode": 429, "message": "Rate limit is exceeded."}, "Rate limit is exceeded."),
        (
            {
                "status": {"code": 402, "message": "Insufficient credits", "error_code": 40201},
                "data": None,
            },
            "Insufficient credits",
        ),
        ("<html>405</html>", "<html>405</html>"),
        ([1, 2], None),
    ],
)
def test_messages_from_every_envelope(body: object, message: str | None) -> None:
    assert message_of(body) == message


def test_retry_after_forms() -> None:
    assert retry_after_of({"Retry-After": "30"}) == 30
    assert retry_after_of({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10
    assert (
        retry_after_of({"x-rate-limit-reset-at-utc": "2026-01-01T00:01:00Z"}, now=1767225600.0)
        == 60
    )
    assert retry_after_of({"x-rate-limit-reset-at-utc": "soon"}) is None
    assert retry_after_of({}) is None


def test_public_api_is_pinned() -> None:
    assert sorted(nanobanana.__all__) == sorted(
        [
            "ApiError",
            "AuthenticationError",
            "Client",
            "ConfigurationError",
            "ContractViolation",
            "Image",
            "InsufficientCredits",
            "InvalidRequest",
            "JobCancelled",
            "JobFailed",
            "JobHandle",
            "JobPending",
            "JobStatus",
            "Metrics",
            "NanoBananaError",
            "NotFound",
            "NotSupported",
            "RateLimited",
            "Result",
            "RetryNotice",
            "RetryPolicy",
            "ServerError",
            "StatusReport",
            "SyncClient",
            "Timeout",
            "Timer",
            "TransportError",
            "Violation",
            "WallTimer",
        ]
    )
    assert all(
        issubclass(getattr(nanobanana, n), nanobanana.NanoBananaError)
        for n in nanobanana.__all__
        if n.endswith(
            (
                "Error",
                "Failed",
                "Cancelled",
                "Pending",
                "Timeout",
                "Credits",
                "Limited",
                "Found",
                "Supported",
                "Violation",
            )
        )
        and n != "Violation"
    )
