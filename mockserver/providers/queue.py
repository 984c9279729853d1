"""A fal-style queue (fal.ai's queue API, which SeaArt's copies): submit, status, result, cancel.

``POST {base}/{model}`` answers the request id and its ``status_url``, ``response_url`` and
``cancel_url``; ``GET …/requests/{id}/status`` answers ``IN_QUEUE`` (with its queue position),
``IN_PROGRESS`` or ``COMPLETED``; the result route answers the status body (202 on SeaArt)
until the job is terminal; ``PUT …/requests/{id}/cancel`` answers ``CANCELLATION_REQUESTED``,
``ALREADY_COMPLETED`` or ``NOT_FOUND``. Request ids are scoped to their model's path and key.
A failed or cancelled job is ``COMPLETED`` with ``error`` and ``error_type``. Errors use
FastAPI's ``{"detail": ...}``, invalid bodies its 422 list.

A provider on this queue subclasses :class:`QueueProvider` for its contract folder (whose
api.json gives the four routes' methods and paths) and gives its authentication envelope and
its result body.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from aiohttp import web

from nanobanana_mock.schemas import Violation

from ..engine.jobs import Failure, Job, State
from ..engine.simulation import NotCancellable, UnknownJob
from ..http import ApiError, BodyError, json_response
from ..pipeline.call import note
from ..store.tenant import current
from .base import JOB_STATE_HEADER, Provider

__all__ = ["CANCELED", "QueueProvider"]

CANCELED = Failure(error="Request was canceled by the user", error_type="CANCELED")


class QueueProvider(Provider):
    """The queue's four routes and bodies; ``{model}`` is the ``endpoint`` path segment."""

    cancelled: ClassVar[Failure] = CANCELED  # what a cancelled job's status body says

    def routes(self) -> list[web.RouteDef]:
        return [
            self.route("submit", self.submit, "endpoint"),
            self.route("status", self.status, "endpoint"),
            self.route("result", self.result, "endpoint"),
            self.route("cancel", self.cancel, "endpoint"),
        ]

    # -- envelopes (FastAPI's) ---------------------------------------------------------------
    def error(self, status: int, message: str) -> ApiError:
        return ApiError(status, {"detail": message})

    def invalid(self, problems: list[Violation]) -> ApiError:
        detail = [{"loc": ["body", *p.path], "msg": p.message, "type": p.rule} for p in problems]
        return ApiError(422, {"detail": detail})

    def body_error(self, err: BodyError) -> ApiError:
        if err.kind == "json":
            return ApiError(
                422, {"detail": [{"loc": ["body"], "msg": err.message, "type": "json_invalid"}]}
            )
        return super().body_error(err)

    def unknown_job(self, request_id: str) -> ApiError:
        return self.error(404, "Request not found")

    def bad_method(self, request: web.Request) -> ApiError:
        return self.error(405, "Method Not Allowed")

    # -- what differs on each queue -------------------------------------------------------------
    @abstractmethod
    def result_body(self, request: web.Request, job: Job) -> dict[str, Any]:
        """A successful job's result (its model's output)."""

    # -- handlers --------------------------------------------------------------------------
    async def submit(self, request: web.Request) -> web.Response:
        job, headers = await self.accept(
            request, request.match_info["endpoint"], self.request_schema(request)
        )
        urls = self._urls(request, job)
        return json_response(
            200,
            {
                "request_id": job.id,
                "response_url": urls["response_url"],
                "status_url": urls["status_url"],
                "cancel_url": urls["cancel_url"],
                "queue_position": 0,  # SeaArt documents "a fixed value of 0"
            },
            headers,
        )

    async def status(self, request: web.Request) -> web.Response:
        match = request.match_info  # ids are scoped to their endpoint
        job, state = await self.read(request, match["request_id"], match["endpoint"])
        return json_response(
            self.contract.http_status("status", state), self.status_body(request, job, state)
        )

    async def result(self, request: web.Request) -> web.Response:
        match = request.match_info
        job, state = await self.read(request, match["request_id"], match["endpoint"], poll=False)
        code = self.contract.http_status("result", state)
        if state is not State.SUCCEEDED:
            return self.unfinished(request, job, state, code)
        return json_response(code, self.result_body(request, job), self.result_headers(job))

    async def cancel(self, request: web.Request) -> web.Response:
        owner = self.authenticate(request)
        match = request.match_info
        try:
            await current().do("cancel", self.name, match["request_id"], owner, match["endpoint"])
        except UnknownJob as missing:
            note(request, job=missing.reason)
            return json_response(404, {"status": "NOT_FOUND"}, {JOB_STATE_HEADER: missing.reason})
        except NotCancellable:
            return json_response(400, {"status": "ALREADY_COMPLETED"})
        return json_response(202, {"status": "CANCELLATION_REQUESTED"})

    # -- hooks a queue may change ------------------------------------------------------------
    def request_schema(self, request: web.Request) -> str | None:
        """The schema a submit's body is checked by: its model's, with its operation's
        ``request_suffix`` (:meth:`model_schema`); None for an unknown model (its 404)."""
        operation = (request.match_info.route.name or "").rsplit(".", 1)[-1]
        model = self.model(request.match_info["endpoint"])
        return None if model is None else self.model_schema(operation, model)

    def result_headers(self, job: Job) -> dict[str, str]:
        """The headers of a successful job's result (none unless the queue adds some)."""
        return {}

    def unfinished(self, request: web.Request, job: Job, state: State, code: int) -> web.Response:
        """The result route's answer for a job that did not succeed: its status body."""
        return json_response(code, self.status_body(request, job, state))

    # -- helpers ---------------------------------------------------------------------------
    def _urls(self, request: web.Request, job: Job) -> dict[str, str]:
        ids = {"model": job.model, "request_id": job.id}
        return {
            "response_url": self.url(request, "result", **ids),
            "status_url": self.url(request, "status", **ids),
            "cancel_url": self.url(request, "cancel", **ids),
        }

    def status_body(self, request: web.Request, job: Job, state: State) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": self.contract.wire(state),
            "request_id": job.id,
            "response_url": self.url(request, "result", model=job.model, request_id=job.id),
        }
        if state is State.QUEUED:
            body["queue_position"] = self.sim.queue_position(job, self.sim.now())
        elif state is State.SUCCEEDED:
            body["metrics"] = {"inference_time": round(job.end_at - job.start_at, 3)}
        elif state in (State.FAILED, State.CANCELLED):
            failure = self.cancelled if state is State.CANCELLED else job.failure
            assert failure is not None
            body["error"] = failure.error
            body["error_type"] = failure.error_type
        return body
