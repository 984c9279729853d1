"""The async client: one interface over Segmind, SeaArt and Pixazo.

    async with Client("seaart") as client:               # key from SEAART_API_KEY
        result = await client.generate("nano_banana_pro", prompt="A red apple",
                                       aspect_ratio="16:9", resolution="2K")
        result.image.save("apple.png")

Against the mock, only the base URL changes (argument or ``<PROVIDER>_BASE_URL``).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import aiohttp

from nanobanana_mock import schemas

from .errors import (
    ApiError,
    ConfigurationError,
    ContractViolation,
    JobCancelled,
    JobFailed,
    JobPending,
    NotSupported,
    Timeout,
    TransportError,
)
from .models import Image, JobHandle, JobStatus, Metrics, Result, StatusReport
from .providers import Adapter, Call, adapter
from .transport import Answer, RetryCallback, RetryPolicy, Timer, WallTimer, exchange

__all__ = ["Client", "Violation"]

log = logging.getLogger("nanobanana_mock.client")

# How wait() polls by default: the first interval, its growth per poll and its ceiling, in
# seconds (the command line's --interval and --max-interval defaults are these).
POLL_INTERVAL = 2.0
POLL_BACKOFF = 1.5
MAX_POLL_INTERVAL = 15.0
StatusCallback = Callable[[StatusReport], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class Violation:
    """Strict mode: one place where an answer broke the contract (a contracts' violation,
    :func:`nanobanana_mock.schemas.explain`, with the call it was found on)."""

    provider: str
    operation: str
    http_status: int
    pointer: str  # JSON pointer (RFC 6901) into the body, "" for the whole body
    message: str

    def __str__(self) -> str:
        where = self.pointer or "/"
        return f"{self.provider}.{self.operation} {self.http_status} {where}: {self.message}"


class Client:
    """An async client of one provider. Use ``async with``, or call :meth:`close`."""

    def __init__(
        self,
        provider: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        retry: RetryPolicy | None = None,
        strict: bool | Literal["raise"] = False,
        request_timeout: float = 60.0,
        poll_interval: float = POLL_INTERVAL,
        poll_backoff: float = POLL_BACKOFF,
        max_poll_interval: float = MAX_POLL_INTERVAL,
        timer: Timer | None = None,
        on_retry: RetryCallback | None = None,
    ) -> None:
        self.adapter: Adapter = adapter(provider)
        self.provider = provider
        key = api_key or self.adapter.key_from_env()
        if not key:
            names = " or ".join(self.adapter.key_env)
            raise ConfigurationError(f"{provider}: no API key (pass api_key= or set {names})")
        self.base_url = self.adapter.origin(base_url)
        self._headers = self.adapter.headers(key)
        self._session = session
        self._own_session = session is None
        self.retry = retry or RetryPolicy()
        self.strict = strict
        self.request_timeout = request_timeout
        self.poll_interval = poll_interval
        self.poll_backoff = poll_backoff
        self.max_poll_interval = max_poll_interval
        self.timer: Timer = timer or WallTimer()
        self.on_retry = on_retry  # told of each wait before a retry (a RetryNotice)
        self.violations: list[Violation] = []

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def models(self) -> tuple[str, ...]:
        return self.adapter.models

    # -- the operations ---------------------------------------------------------------------
    async def submit(self, model: str, **params: Any) -> JobHandle:
        """Start a job. Never retried once the request may have reached the provider, so a
        submit never pays twice; see :mod:`nanobanana.transport`."""
        body = self.adapter.body(model, params)
        answer = await self._send(
            self.adapter.submit_call(self.base_url, model, body), idempotent=False
        )
        if not isinstance(answer.body, dict) or "request_id" not in answer.body:
            raise TransportError(
                f"submit answered {answer.status} without a request_id",
                provider=self.provider,
                status=answer.status,
                body=answer.body,
            )
        return self.adapter.handle(self.base_url, model, answer.body)

    async def status(self, handle: JobHandle, *, deadline: float | None = None) -> StatusReport:
        """The job's current status (one read, retried on transient failures)."""
        call = self.adapter.status_call(self.adapter.rebased(handle, self.base_url))
        answer = await self._send(
            call, ok=self.adapter.state_codes(call.operation), deadline=deadline
        )
        report = self.adapter.report(answer.status, answer.body)
        if report is None:
            raise TransportError(
                f"status answered {answer.status} without a status",
                provider=self.provider,
                status=answer.status,
                body=answer.body,
            )
        return report

    async def result(self, handle: JobHandle, *, deadline: float | None = None) -> Result:
        """The finished job's output; JobFailed / JobCancelled / JobPending otherwise."""
        call = self.adapter.result_call(self.adapter.rebased(handle, self.base_url))
        answer = await self._send(
            call, ok=self.adapter.state_codes(call.operation), deadline=deadline
        )
        report = self.adapter.report(answer.status, answer.body)
        if report is not None and report.status is not JobStatus.SUCCEEDED:
            raise self._not_done(handle, report)
        result = self.adapter.result(handle, answer.body)
        if not result.images:
            raise TransportError(
                "a finished job with no images", provider=self.provider, body=answer.body
            )
        return result

    async def cancel(self, handle: JobHandle) -> bool:
        """Ask for cancellation: True if accepted, False if the job had already finished."""
        call = self.adapter.cancel_call(self.adapter.rebased(handle, self.base_url))
        if call is None:
            raise NotSupported(f"{self.provider} has no cancel operation")
        answer = await self._send(call, ok=self.adapter.state_codes(call.operation))
        return answer.status == 202 or (
            isinstance(answer.body, dict) and answer.body.get("status") == "CANCELLATION_REQUESTED"
        )

    async def wait(
        self,
        handle: JobHandle,
        *,
        timeout: float = 600.0,
        interval: float | None = None,
        on_status: StatusCallback | None = None,
    ) -> Result:
        """Poll until the job is terminal (interval growing by ``poll_backoff`` up to
        ``max_poll_interval``), then fetch the result. Raises Timeout, with the handle, when
        ``timeout`` seconds pass first; the job can be resumed with the handle later."""
        deadline = self.timer.now() + timeout
        delay = self.poll_interval if interval is None else interval
        last: StatusReport | None = None
        try:
            while True:
                last = await self.status(handle, deadline=deadline)
                if on_status is not None:
                    outcome = on_status(last)
                    if outcome is not None:
                        await outcome
                if last.status.terminal:
                    break
                remaining = deadline - self.timer.now()
                if remaining <= 0:
                    raise Timeout(
                        f"job {handle.request_id} still {last.raw_status} at the deadline",
                        provider=self.provider,
                        handle=handle,
                        last=last,
                    )
                await self.timer.sleep(min(delay, remaining))
                delay = min(delay * self.poll_backoff, self.max_poll_interval)
            if last.status is not JobStatus.SUCCEEDED:
                raise self._not_done(handle, last)
            return await self.result(handle, deadline=deadline)
        except Timeout as exc:
            seen = f"; last seen {last.raw_status}" if last is not None else ""
            raise Timeout(
                f"job {handle.request_id} did not finish within {timeout:g}s{seen}",
                provider=self.provider,
                handle=handle,
                last=last,
            ) from exc

    async def generate(
        self,
        model: str,
        *,
        download: bool = True,
        timeout: float = 600.0,
        on_status: StatusCallback | None = None,
        **params: Any,
    ) -> Result:
        """Submit, wait and (by default) download every image; one blocking call where the
        provider has no queue (Gemini)."""
        if "submit" not in self.adapter.api["operations"]:
            return await self.generate_sync(model, **params)
        handle = await self.submit(model, **params)
        result = await self.wait(handle, timeout=timeout, on_status=on_status)
        return await self.download_all(result) if download else result

    async def download(self, image: Image) -> Image:
        """Fetch an image's bytes (retried); width and height are read from the file."""
        answer = await self._send(Call("image", "GET", image.url), idempotent=True, auth=False)
        data = answer.raw
        content_type = answer.headers.get("Content-Type", image.content_type)
        width, height = _dimensions(data)
        return replace(
            image.with_data(data, content_type),
            width=width or image.width,
            height=height or image.height,
        )

    async def download_all(self, result: Result) -> Result:
        images = tuple([await self.download(image) for image in result.images])
        return replace(result, images=images)

    async def generate_sync(self, model: str, **params: Any) -> Result:
        """A blocking generation: Segmind's ``/v1`` (the image bytes, with the accounting
        headers as metrics) or Gemini's ``generateContent`` (the image inline). Like submit,
        never retried once sent."""
        body = self.adapter.body(model, params)
        call = self.adapter.sync_call(self.base_url, model, body)
        if call is None:
            raise NotSupported(f"{self.provider} has no synchronous generation")
        answer = await self._send(call, idempotent=False)
        parsed = self.adapter.sync_result(self.base_url, model, answer.body)
        if parsed is not None:
            return parsed
        headers = {k.lower(): v for k, v in answer.headers.items()}
        handle = JobHandle(self.provider, model, headers.get("x-request-id", ""), self.base_url)
        width, height = _dimensions(answer.raw)
        image = Image(call.url, width, height, headers.get("content-type"), answer.raw)
        metrics = Metrics(
            inference_time=_float(headers.get("x-generation-time")),
            cost=_float(headers.get("x-cost")),
            remaining_credits=_float(headers.get("x-remaining-credits")),
        )
        return Result(handle, (image,), metrics, {"headers": headers})

    # -- plumbing -----------------------------------------------------------------------------
    def _not_done(self, handle: JobHandle, report: StatusReport) -> ApiError:
        if report.status in (JobStatus.CANCELLED, JobStatus.FAILED):
            cancelled = report.status is JobStatus.CANCELLED
            ended = JobCancelled if cancelled else JobFailed
            default = "the job was cancelled" if cancelled else "the job failed"
            return ended(
                report.error or default,
                provider=self.provider,
                handle=handle,
                report=report,
                error_type=report.error_type,
                status=report.http_status,
                body=dict(report.body),
            )
        return JobPending(
            f"job {handle.request_id} is still {report.raw_status}",
            provider=self.provider,
            report=report,
            status=report.http_status,
        )

    async def _send(
        self,
        call: Call,
        *,
        ok: frozenset[int] = frozenset(),
        idempotent: bool = True,
        deadline: float | None = None,
        auth: bool = True,
    ) -> Answer:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        answer = await exchange(
            self._session,
            self.provider,
            call,
            self._headers if auth else {},
            policy=self.retry,
            timer=self.timer,
            ok=ok,
            idempotent=idempotent,
            deadline=deadline,
            request_timeout=self.request_timeout,
            on_retry=self.on_retry,
        )
        if self.strict and call.operation != "image" and isinstance(answer.body, dict | list):
            self._check(call.operation, answer)
        return answer

    def _check(self, operation: str, answer: Answer) -> None:
        """Strict mode: record (or raise) every contract violation, with its JSON pointer."""
        spec = self.adapter.api["operations"].get(operation, {}).get("responses", {})
        schema = spec.get(str(answer.status), {}).get("schema")
        found: list[Violation] = []
        if schema is None:
            found.append(
                Violation(
                    self.provider,
                    operation,
                    answer.status,
                    "",
                    f"HTTP {answer.status} is not in the contract",
                )
            )
        else:
            for each in schemas.explain(self.provider, schema, answer.body):
                found.append(
                    Violation(self.provider, operation, answer.status, each.pointer, each.message)
                )
        for violation in found:
            log.warning("contract violation: %s", violation)
        self.violations.extend(found)
        if found and self.strict == "raise":
            raise ContractViolation(found)


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _dimensions(data: bytes) -> tuple[int | None, int | None]:
    """Width and height from an image file's header (Pillow reads no more than it needs)."""
    try:
        from PIL import Image as PILImage

        with PILImage.open(io.BytesIO(data)) as picture:
            return picture.size
    except Exception:
        return None, None
