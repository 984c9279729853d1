"""Every failure as the answer a client gets: the provider's own error envelope.

The pipeline's one error boundary hands each exception here. What it can see, and what each
becomes (the first entry of :data:`TRANSLATIONS` the exception is an instance of):

    ApiError                   already the provider's answer: sent as it is
    web.HTTPException          aiohttp's and the catch-all's: 404 the provider's unknown route,
                               405 its bad method (with Allow), 413 too large, any other error
                               code its plain envelope; a non-error (a redirect) passes through
    BodyError                  a body that cannot be read: the provider's body error (413, 415,
                               400, as its handlers answer it)
    ClockStopped               a wait on the clock that a reset replaced: 503, retry in 1 s
    StoreUnavailable           the shared store (Redis) cannot be reached: 503, retry in 1 s,
                               the cause in X-Mock-Store
    TimeoutError               a wait inside the mock that timed out: 504, logged
    ContractViolation          the mock broke its own contract: 500, logged
    Exception                  anything else: 500, logged

A request of no provider (the index, an unknown job's image, a path of no prefix) gets the
same codes as ``{"error": message}``. tests/mockserver/test_envelope.py checks that every
class here, and every ``web.HTTPException`` aiohttp defines, gives a schema-valid envelope
for every provider.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from ..engine.clock import ClockStopped
from ..http import ApiError, BodyError, json_response
from ..providers.base import Provider
from ..store.tenant import StoreUnavailable
from .self_check import ContractViolation

__all__ = ["TRANSLATIONS", "envelope"]

log = logging.getLogger("nanobanana_mock")

Translate = Callable[[Provider | None, web.Request, Exception], web.StreamResponse]
RESET_MESSAGE = "the mock was reset while this request waited; send it again"
INTERNAL_MESSAGE = "internal mock error; see the server log"


def envelope(provider: Provider | None, request: web.Request, exc: Exception) -> web.StreamResponse:
    """``exc`` as the answer a client gets (a redirect raised is raised again)."""
    for kind, translate in TRANSLATIONS:
        if isinstance(exc, kind):
            return translate(provider, request, exc)
    raise AssertionError("unreachable: Exception is the last entry")  # pragma: no cover


def _api_error(provider: Provider | None, request: web.Request, exc: Exception) -> web.Response:
    assert isinstance(exc, ApiError)
    return exc.response()


def _http_exception(
    provider: Provider | None, request: web.Request, exc: Exception
) -> web.StreamResponse:
    assert isinstance(exc, web.HTTPException)
    if exc.status < 400:
        raise exc  # not a failure (a redirect): aiohttp sends it
    if provider is None:
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return json_response(exc.status, {"error": exc.reason}, allow)
    if exc.status == 404:
        return provider.unknown_route(request).response()
    if exc.status == 405:
        error = provider.bad_method(request)
        if error.status == 405 and "Allow" in exc.headers:  # RFC 9110: say what is allowed
            error.headers["Allow"] = exc.headers["Allow"]
        return error.response()
    if exc.status == 413:
        return provider.error(413, "request body too large").response()
    return provider.error(exc.status, exc.reason).response()


def _body_error(provider: Provider | None, request: web.Request, exc: Exception) -> web.Response:
    assert isinstance(exc, BodyError)
    if provider is None:
        return json_response(exc.status, {"error": exc.message})
    return provider.body_error(exc).response()


def _clock_stopped(provider: Provider | None, request: web.Request, exc: Exception) -> web.Response:
    if provider is None:
        return json_response(503, {"error": RESET_MESSAGE}, {"Retry-After": "1"})
    return provider.fault_error(503, RESET_MESSAGE, retry_after=1.0).response()


STORE_HEADER = "X-Mock-Store"


def _store_unavailable(
    provider: Provider | None, request: web.Request, exc: Exception
) -> web.Response:
    assert isinstance(exc, StoreUnavailable)
    message = f"the mock's store is unavailable: {exc.reason}"
    headers = {STORE_HEADER: f"unavailable: {exc.reason}"}
    if provider is None:
        return json_response(503, {"error": message}, {"Retry-After": "1", **headers})
    error = provider.fault_error(503, message, retry_after=1.0)
    error.headers.update(headers)
    return error.response()


def _timeout(provider: Provider | None, request: web.Request, exc: Exception) -> web.Response:
    log.error("timed out on %s %s", request.method, request.path, exc_info=exc)
    message = "a wait inside the mock timed out; see the server log"
    return _plain(provider, 504, message)


def _violation(provider: Provider | None, request: web.Request, exc: Exception) -> web.Response:
    log.error("contract violation on %s %s", request.method, request.path, exc_info=exc)
    return _plain(provider, 500, "the mock broke its own contract; see the server log")


def _unexpected(provider: Provider | None, request: web.Request, exc: Exception) -> web.Response:
    log.error("unexpected error on %s %s", request.method, request.path, exc_info=exc)
    return _plain(provider, 500, INTERNAL_MESSAGE)


def _plain(provider: Provider | None, status: int, message: str) -> web.Response:
    error = provider.error(status, message) if provider else ApiError(status, {"error": message})
    return error.response()


# In order: the first class an exception is an instance of decides. Exception comes last.
TRANSLATIONS: tuple[tuple[type[Exception], Translate], ...] = (
    (ApiError, _api_error),
    (web.HTTPException, _http_exception),
    (BodyError, _body_error),
    (ClockStopped, _clock_stopped),
    (StoreUnavailable, _store_unavailable),
    (TimeoutError, _timeout),
    (ContractViolation, _violation),
    (Exception, _unexpected),
)
