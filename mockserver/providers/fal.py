"""fal.ai (queue.fal.run and fal.run): ``Authorization: Key``; the queue SeaArt copies.

Routes, on the mock's one origin: the queue under ``/fal/queue/fal-ai/{model}`` (submit, its
``/edit`` variant, status, result, cancel) and the synchronous form under
``/fal/run/fal-ai/{model}`` (and ``/edit``), which blocks until the job ends on the virtual
clock. Request URLs name the app (``fal-ai/{model}``) without the ``/edit`` sub-path, as fal's
do, so a job of an edit is read at its model's URLs. Status: ``IN_QUEUE`` with
``queue_position``; ``IN_PROGRESS`` and ``COMPLETED`` with ``logs`` (null unless ``?logs=1``).
The result is 202 until done, then the output with ``x-fal-request-id`` and
``x-fal-billable-units``; a failed or cancelled job answers ``{"detail": ...}``. The status
stream (``…/status/stream``) sends the status body as Server-Sent Events (sse.py), one each time
it changes on the virtual clock, until ``COMPLETED``. Errors are FastAPI's ``{"detail": ...}``
(queue.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any, ClassVar

from aiohttp import web

from ..engine import images
from ..engine.clock import ClockStopped, VirtualClock
from ..engine.jobs import TERMINAL, Job, State
from ..engine.simulation import UnknownJob
from ..http import ApiError, json_response
from ..pipeline.call import call_of, note
from ..store.tenant import StoreUnavailable, current
from . import sse
from .queue import QueueProvider

__all__ = ["Fal"]

REQUEST_ID_HEADER = "x-fal-request-id"
BILLABLE_HEADER = "x-fal-billable-units"  # in the model's priced unit [3P]; see api.json
UNIT_TIER = "1K"  # the tier whose per-image price is one billable unit [INF]
DESCRIPTION = "Here is the image you asked for."  # the model's text: the mock's own [INF]
TRUE = frozenset({"1", "true", "True", "yes"})


class Fal(QueueProvider, contract="fal"):
    credits_status = 403  # "User is locked. Reason: Exhausted balance." [3P]
    # the status stream's bounds, in wall seconds: how long one stream may last, and the
    # longest silence before a keep-alive comment line (api.json, status_stream)
    stream_seconds: ClassVar[float] = 600.0
    keepalive_seconds: ClassVar[float] = 15.0

    def routes(self) -> list[web.RouteDef]:
        own = [("submit_edit", self.submit), ("status_stream", self.status_stream)]
        own += [("run", self.run), ("run_edit", self.run)]  # fal.run, the same body
        return [*super().routes(), *(self.route(op, h, "endpoint") for op, h in own)]

    # -- envelopes (FastAPI's {detail}, from queue.py) ---------------------------------------
    def auth_error(self, missing: bool) -> ApiError:
        if missing:
            return self.error(401, "Authentication is required to access this application.")
        return self.error(401, self.fault_messages[401])

    def unknown_model(self, name: str) -> ApiError:
        return self.error(404, f"Application 'fal-ai/{name[:60]}' not found")

    # -- what differs from SeaArt's queue --------------------------------------------------
    def status_body(self, request: web.Request, job: Job, state: State) -> dict[str, Any]:
        body = super().status_body(request, job, state)
        ids = {"model": job.model, "request_id": job.id}
        body["status_url"] = self.url(request, "status", **ids)
        body["cancel_url"] = self.url(request, "cancel", **ids)
        if state is State.QUEUED:
            return body
        body["logs"] = self._logs(job, state) if _asks_logs(request) else None
        if state in (State.FAILED, State.CANCELLED):
            body["metrics"] = {}
        return body

    def unfinished(self, request: web.Request, job: Job, state: State, code: int) -> web.Response:
        if state is State.CANCELLED:
            raise self.error(code, self.cancelled.error)
        if state is State.FAILED:
            assert job.failure is not None
            raise self.error(code, job.failure.error)
        return super().unfinished(request, job, state, code)

    def result_body(self, request: web.Request, job: Job) -> dict[str, Any]:
        ext = images.extension(job.output.fmt)
        return {
            "images": [
                {
                    "url": url,
                    "content_type": images.content_type(job.output.fmt),
                    "file_name": f"nano-banana-output-{i + 1}.{ext}",
                    "width": job.output.width,
                    "height": job.output.height,
                }
                for i, url in enumerate(self.image_urls(request, job))
            ],
            "description": DESCRIPTION,
        }

    def result_headers(self, job: Job) -> dict[str, str]:
        # fal-client reads the id from the finished result [SDK]; the units [3P] (api.json)
        return {REQUEST_ID_HEADER: job.id, BILLABLE_HEADER: self.billable_units(job)}

    # -- handlers --------------------------------------------------------------------------

    async def status_stream(self, request: web.Request) -> web.StreamResponse:
        """The job's status as Server-Sent Events: the status body now, then each time it
        changes as the virtual clock moves, until it is terminal (sse.py, api.json)."""
        match = request.match_info
        owner = self.authenticate(request)
        clock = self.state.clock
        seen = (clock, clock.moves, clock.now())  # the clock as the read next sees it
        job, state = await self.read(request, match["request_id"], match["endpoint"], owner=owner)
        response = await sse.open_stream(request)
        # a transport fault after the answer: the stream is cut after its first event
        cut = bool(getattr(call_of(request).entry, "cut", False))
        with contextlib.suppress(ClockStopped, UnknownJob, StoreUnavailable, ConnectionResetError):
            # reset, evicted, expired, the store gone, the client gone: the stream ends
            await self._follow(request, response, owner, (job, state), seen, cut)
        if not cut:
            with contextlib.suppress(ConnectionResetError):
                await response.write_eof()
        return response

    async def _follow(
        self,
        request: web.Request,
        response: web.StreamResponse,
        owner: str,
        read: tuple[Job, State],
        seen: tuple[VirtualClock, int, float],
        cut: bool,
    ) -> None:
        """Send the job's status body whenever it changes, waiting on the clock between
        reads (its next move, or the job's next change by time), a keep-alive line after
        each quiet ``keepalive_seconds``, for at most ``stream_seconds``."""
        match, tenant, sent = request.match_info, current(), None
        until = asyncio.get_running_loop().time() + self.stream_seconds
        while True:
            job, state = read
            note(request, state=state)
            body = self.status_body(request, job, state)
            if body != sent:
                await response.write(sse.event(body))
                sent = body
            left = until - asyncio.get_running_loop().time()
            if state in TERMINAL or left <= 0 or cut:
                return
            clock, moves, now = seen  # a clock replaced meanwhile (a reset) was stopped
            wall = min(left, self.keepalive_seconds)
            if not await sse.wait(clock, moves, _next_change(job, now), wall):
                await response.write(sse.KEEPALIVE)
            await tenant.sync()  # a shared store: this process's copy, up to date
            clock = tenant.state.clock
            seen = (clock, clock.moves, clock.now())
            read = tenant.state.sim.read(
                self.name, match["request_id"], owner, match["endpoint"], poll=False
            )

    async def run(self, request: web.Request) -> web.Response:
        """fal.run: the job followed to its end on the virtual clock, answered in one call."""
        endpoint = request.match_info["endpoint"]
        job, headers, state = await self.settled(request, endpoint, self.request_schema(request))
        if state is not State.SUCCEEDED:  # failed (or cancelled through the queue meanwhile)
            raise self.error(422, (job.failure or self.cancelled).error)
        headers.update(self.result_headers(job))
        return json_response(200, self.result_body(request, job), headers)

    def billable_units(self, job: Job) -> str:
        """What the job is billed in its model's priced unit: its cost over the model's
        per-image price at 1K (an image, a 4K Pro image 2, a 0.5K nano-banana-2 image 0.75)."""
        model = self.model(job.model)
        unit = model.price_usd.get(UNIT_TIER) if model is not None else None
        units = job.cost / unit if unit else float(job.output.count)
        return f"{round(units, 4):g}"

    # -- helpers ---------------------------------------------------------------------------
    def _logs(self, job: Job, state: State) -> list[dict[str, str]]:
        """The job's log lines, stamped on the virtual clock (the mock's own wording)."""
        count = job.output.count
        lines = [(job.start_at, f"Generating {count} image{'s' if count > 1 else ''}")]
        if state is State.SUCCEEDED:
            lines.append((job.end_at, "Done"))
        return [
            {
                "message": message,
                "level": "INFO",
                "source": "user",
                "timestamp": datetime.fromtimestamp(at, UTC).isoformat(),
            }
            for at, message in lines
        ]


def _next_change(job: Job, now: float) -> float:
    """When the job's state next changes by time alone (its start, then its end or failure);
    a move of the clock wakes the stream sooner (a queue position may change)."""
    return min((at for at in (job.start_at, job.busy_until) if at > now), default=float("inf"))


def _asks_logs(request: web.Request) -> bool:
    return request.query.get("logs", "") in TRUE
