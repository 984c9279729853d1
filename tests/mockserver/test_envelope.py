"""The pipeline's error boundary (pipeline/envelope.py): every exception it can see has an
entry, and each gives a schema-valid envelope for every provider (as httpx tests that every
httpcore exception is mapped)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from nanobanana_mock import schemas
from nanobanana_mock.config import MockConfig
from nanobanana_mock.engine.clock import ClockStopped
from nanobanana_mock.http import ApiError, BodyError
from nanobanana_mock.pipeline.envelope import TRANSLATIONS, envelope
from nanobanana_mock.pipeline.self_check import ContractViolation
from nanobanana_mock.providers import PROVIDER_CLASSES
from nanobanana_mock.providers.base import Provider
from nanobanana_mock.state import MockState
from nanobanana_mock.store.tenant import DEFAULT, StoreUnavailable, Tenant, use
from tests.harness import validate

# What the pipeline can see, and where from (anything else is "any other Exception"):
SEEN: dict[type[Exception], str] = {
    ApiError: "a handler, a source or an effect: an emulated provider error",
    web.HTTPException: "aiohttp (a body over the app's limit) and the catch-all's 404 and 405",
    BodyError: "a body read through the Call that no handler turned into its answer",
    ClockStopped: "a wait on the virtual clock that a reset ended",
    StoreUnavailable: "the shared store (Redis) cannot be reached: the provider's 503",
    TimeoutError: "a wait inside the mock with a deadline",
    ContractViolation: "a check of its own contract inside an answer (the self-check of the"
    " finished answer raises past the boundary, on purpose: aiohttp answers 500)",
}
BODY_KINDS = ("content_type", "too_large", "too_deep", "json", "payload")


def serving(state: MockState) -> tuple[()]:
    """Make ``state`` the current tenant's, as a request would (no arguments for a provider)."""
    use(Tenant(DEFAULT, state))
    return ()


def _leaves(cls: type[web.HTTPException]) -> list[type[web.HTTPException]]:
    subclasses = cls.__subclasses__()
    if not subclasses:
        return [cls]
    return [leaf for sub in subclasses for leaf in _leaves(sub)]


HTTP_EXCEPTIONS = sorted(
    {cls for cls in _leaves(web.HTTPException) if cls.__module__.startswith("aiohttp")},
    key=lambda cls: cls.status_code,
)


ARGUMENTS: dict[type[web.HTTPException], dict[str, Any]] = {  # the ones that need some
    web.HTTPMethodNotAllowed: {"method": "PATCH", "allowed_methods": ["GET", "POST"]},
    web.HTTPRequestEntityTooLarge: {"max_size": 10, "actual_size": 11},
    web.HTTPUnavailableForLegalReasons: {"link": "https://example.com/why"},
}


def raised(leaf: type[web.HTTPException]) -> web.HTTPException:
    if issubclass(leaf, web.HTTPMove):
        return leaf(location="/elsewhere")
    return leaf(**ARGUMENTS.get(leaf, {}))


def provider_of(name: str) -> Provider:
    (cls,) = [cls for cls in PROVIDER_CLASSES if cls.name == name]
    return cls(*serving(MockState.create(MockConfig())))


REQUEST = make_mocked_request("POST", "/some/path")


def answer(provider: Provider | None, exc: Exception) -> tuple[int, Any, web.Response]:
    """The envelope's status, body (parsed when JSON) and response."""
    response = envelope(provider, REQUEST, exc)
    assert isinstance(response, web.Response)
    assert response.text is not None
    body = json.loads(response.text) if response.content_type == "application/json" else None
    return response.status, body, response


def test_every_exception_the_pipeline_sees_has_its_own_entry() -> None:
    classes = [cls for cls, _ in TRANSLATIONS]
    assert classes[-1] is Exception  # and every other exception gets the provider's 500
    assert set(classes[:-1]) == set(SEEN)
    for cls in SEEN:  # the first entry it is an instance of is its own
        assert next(c for c in classes if issubclass(cls, c)) is cls
    for i, cls in enumerate(classes):  # no entry hides a later one
        assert not any(issubclass(cls, earlier) for earlier in classes[:i])


def example(cls: type[Exception], provider: Provider | None) -> list[Exception]:
    """Instances of ``cls`` as the pipeline meets them."""
    if cls is ApiError:
        return [
            provider.error(400, "bad") if provider else ApiError(404, {"error": "File not found"})
        ]
    if cls is web.HTTPException:
        return [raised(leaf) for leaf in HTTP_EXCEPTIONS if leaf.status_code >= 400]
    if cls is BodyError:
        return [BodyError(kind, f"a {kind} body") for kind in BODY_KINDS]
    if cls is Exception:
        return [RuntimeError("boom"), KeyError("x"), ZeroDivisionError()]
    return [cls("x")]


ALL = [*SEEN, Exception]


@pytest.mark.parametrize("name", schemas.PROVIDERS)
@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_each_gives_a_schema_valid_envelope_for_every_provider(
    name: str, cls: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    provider = provider_of(name)
    for exc in example(cls, provider):
        status, body, response = answer(provider, exc)
        assert status >= 400, exc
        if isinstance(exc, web.HTTPMethodNotAllowed):  # the provider's own answer to a method
            own = provider.bad_method(REQUEST)  # Segmind's is an HTML page, Pixazo's a 404
            assert (status, response.content_type) == (own.status, own.content_type)
            assert response.headers.get("Allow") == ("GET,POST" if status == 405 else None)
            if body is None:
                continue
        elif isinstance(exc, web.HTTPException):
            assert status == exc.status
        validate(name, "error", body)


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_a_request_of_no_provider_gets_an_error_object(
    cls: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    """The index, an unknown job's image, a path under no provider's prefix."""
    codes = {ClockStopped: 503, StoreUnavailable: 503, TimeoutError: 504}
    for exc in example(cls, None):
        status, body, _ = answer(None, exc)
        assert status == codes.get(type(exc), getattr(exc, "status", 500)), exc
        assert isinstance(body, dict) and isinstance(body.get("error"), str), body


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (ClockStopped(), 503),
        (TimeoutError(), 504),
        (ContractViolation("x"), 500),
        (RuntimeError("boom"), 500),
    ],
)
def test_the_mocks_own_failures_are_answers_every_operation_declares(
    exc: Exception, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    for name in schemas.PROVIDERS:
        assert answer(provider_of(name), exc)[0] == status
        for operation, spec in schemas.load(name, "api")["operations"].items():
            assert spec["responses"][str(status)]["schema"] == "error", (name, operation)
    if status != 503:  # a reset is expected; the others are the mock's fault, and logged
        assert caplog.records, "a failure of the mock is logged"


def test_a_reset_tells_when_to_come_back() -> None:
    for provider in [None, *map(provider_of, schemas.PROVIDERS)]:
        assert answer(provider, ClockStopped())[2].headers["Retry-After"] == "1"


@pytest.mark.parametrize("leaf", [c for c in HTTP_EXCEPTIONS if c.status_code < 400])
def test_an_http_exception_that_is_no_failure_passes_through(
    leaf: type[web.HTTPException],
) -> None:
    exc = raised(leaf)
    with pytest.raises(leaf):
        envelope(provider_of("segmind"), make_mocked_request("GET", "/x"), exc)
