"""The client's errors: one small tree, mapped from HTTP answers and transport failures here
and nowhere else.

    NanoBananaError
    ├── ConfigurationError        a missing key, an unknown provider or model, a bad base URL
    ├── NotSupported              e.g. cancel on a provider without a cancel route
    ├── ContractViolation         strict mode: an answer broke the contract (also the contracts'
    │                             ContractViolation, an AssertionError)
    └── ApiError                  the provider answered with an error, or could not be reached
        ├── AuthenticationError   401, 403
        ├── InsufficientCredits   402, Segmind's 406 "Insufficient credits", fal's 403 balance
        ├── RateLimited           429; ``retry_after`` is the wait the provider asked for
        ├── InvalidRequest        400, 406 (content type), 413, 415, 422
        ├── NotFound              404, 410: an unknown or expired id, model or route
        ├── ServerError           5xx
        ├── TransportError        reset, refused, truncated or malformed answers
        ├── JobFailed             the job ended FAILED; ``error``, ``error_type``
        │   └── JobCancelled      the job was cancelled
        ├── JobPending            a result was asked for before the job finished
        └── Timeout               the caller's deadline passed; ``handle`` resumes the job
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from nanobanana_mock import schemas

if TYPE_CHECKING:
    from .models import JobHandle, StatusReport

__all__ = [
    "ApiError",
    "AuthenticationError",
    "ConfigurationError",
    "ContractViolation",
    "InsufficientCredits",
    "InvalidRequest",
    "JobCancelled",
    "JobFailed",
    "JobPending",
    "NanoBananaError",
    "NotFound",
    "NotSupported",
    "RateLimited",
    "ServerError",
    "Timeout",
    "TransportError",
    "error_from_response",
    "message_of",
    "retry_after_of",
]


class NanoBananaError(Exception):
    """Every error this library raises."""


class ConfigurationError(NanoBananaError):
    """The client was set up wrongly (no key, unknown provider or model, bad URL)."""


class NotSupported(NanoBananaError):
    """The provider has no such operation (e.g. cancel on Segmind or Pixazo)."""


class ContractViolation(NanoBananaError, schemas.ContractViolation):
    """Strict mode: an answer broke the provider's contract. The contracts' one
    ``ContractViolation`` (an ``AssertionError``), as a member of this error tree."""

    def __init__(self, violations: list[Any]) -> None:
        schemas.ContractViolation.__init__(self, violations, "; ".join(map(str, violations)))


class ApiError(NanoBananaError):
    """The provider answered with an error, or the exchange failed. ``retry_after`` is the
    wait in seconds the provider asked for (set on RateLimited and ServerError), else None."""

    shows_http_status: ClassVar[bool] = True  # the text ends "(HTTP 429)"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        shown = f" (HTTP {status})" if status and self.shows_http_status else ""
        super().__init__(f"{provider}: {message}{shown}")
        self.message = message
        self.provider = provider
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.retry_after = retry_after


class AuthenticationError(ApiError):
    """The key is missing, wrong, or not allowed to do this."""


class InsufficientCredits(ApiError):
    """The account cannot pay for this generation."""


class RateLimited(ApiError):
    """Too many requests; ``retry_after`` seconds is what the provider asked to wait."""


class InvalidRequest(ApiError):
    """The provider refused the request as invalid; ``message`` is its explanation."""


class NotFound(ApiError):
    """No such request id (unknown or expired), model or route. ``job_state`` says why a job
    id was not found when the mock tells (its ``X-Mock-Job-State`` header: ``"expired"``,
    ``"evicted"`` or ``"unknown"``); a live provider does not, and it is None."""

    def __init__(self, message: str, *, job_state: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.job_state = job_state


class ServerError(ApiError):
    """The provider failed (5xx); ``retry_after`` when it said when to come back."""


class TransportError(ApiError):
    """The exchange itself failed: refused, reset, cut short, or not the JSON promised.
    ``sent`` tells whether the request may have reached the provider."""

    def __init__(self, message: str, *, sent: bool = True, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.sent = sent


class JobFailed(ApiError):
    """The job reached a failed terminal state: ``error`` is the provider's message and
    ``error_type`` its kind (e.g. ``CONTENT_BLOCKED``); the text of the exception names both
    (not the HTTP code, which tells nothing about a job: SeaArt answers 200, Segmind 422)."""

    shows_http_status: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        handle: JobHandle,
        error_type: str | None = None,
        report: StatusReport | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(f"{error_type}: {message}" if error_type else message, **kw)
        self.message = message
        self.error = message
        self.error_type = error_type
        self.handle = handle
        self.report = report


class JobCancelled(JobFailed):
    """The job was cancelled before it finished."""


class JobPending(ApiError):
    """The job has not finished yet; ``report`` is its current status."""

    def __init__(self, message: str, *, report: StatusReport, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.report = report


class Timeout(ApiError):
    """The caller's deadline passed. The job may still finish: ``handle`` resumes it."""

    def __init__(
        self, message: str, *, handle: JobHandle | None, last: StatusReport | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.handle = handle
        self.last = last


def message_of(body: Any) -> str | None:
    """The human message in any of the three providers' error envelopes."""
    if isinstance(body, str):
        return body.strip()[:500] or None
    if not isinstance(body, Mapping):
        return None
    error = body.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, Mapping) and isinstance(error.get("message"), str):
        return str(error["message"])
    detail = body.get("detail")
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, Mapping):
                where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        return "; ".join(parts) or None
    if isinstance(body.get("message"), str):  # Azure APIM
        return str(body["message"])
    status = body.get("status")
    if isinstance(status, Mapping) and isinstance(status.get("message"), str):  # SeaArt 402
        return str(status["message"])
    return None


_JOB_STATES = frozenset({"expired", "evicted", "deleted", "unknown"})


def _job_state_of(headers: Mapping[str, str]) -> str | None:
    """Why a job id was not found, as the mock's own ``X-Mock-Job-State`` header says; None
    when the answer does not say (a live provider), or says something else."""
    value = next((v for k, v in headers.items() if k.lower() == "x-mock-job-state"), None)
    return value if value in _JOB_STATES else None


def retry_after_of(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from ``Retry-After`` (seconds or an HTTP date) or Segmind's
    ``x-rate-limit-reset-at-utc``; None when the answer does not say."""
    lowered = {k.lower(): v for k, v in headers.items()}
    now = time.time() if now is None else now
    value = lowered.get("retry-after")
    if value:
        try:
            seconds = float(value)
        except ValueError:
            try:  # an HTTP date; a server may send anything, which then says nothing
                parsed = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError, OverflowError):
                parsed = None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - now)
        else:
            if not math.isnan(seconds):  # "nan" says nothing either ("inf": wait too long)
                return max(0.0, seconds)
    reset = lowered.get("x-rate-limit-reset-at-utc")
    if reset:
        try:
            return max(0.0, datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp() - now)
        except ValueError:
            return None
    return None


def error_from_response(
    provider: str, status: int, body: Any, headers: Mapping[str, str]
) -> ApiError:
    """The one place an HTTP error answer becomes an exception of this tree."""
    message = message_of(body) or f"HTTP {status}"
    kw: dict[str, Any] = {"provider": provider, "status": status, "body": body, "headers": headers}
    lowered = message.lower()
    if status == 402 or (
        status in (403, 406) and ("credit" in lowered or "exhausted balance" in lowered)
    ):  # Segmind's 406 "Insufficient credits", fal's 403 "... Exhausted balance ..."
        return InsufficientCredits(message, **kw)
    if status in (401, 403):
        return AuthenticationError(message, **kw)
    if status == 429:
        return RateLimited(message, retry_after=retry_after_of(headers), **kw)
    if status in (404, 410):
        return NotFound(message, job_state=_job_state_of(headers), **kw)
    if status >= 500:
        return ServerError(message, retry_after=retry_after_of(headers), **kw)
    if 400 <= status < 500:
        return InvalidRequest(message, **kw)
    return ApiError(f"unexpected answer: {message}", **kw)
