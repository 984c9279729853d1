"""Pixazo (gateway.pixazo.ai, an Azure APIM gateway): ``Ocp-Apim-Subscription-Key``.

Pixazo's model page documents one model, Nano Banana Pro, on the ``nano-banana-pro-770``
path: a submit, and a result route that is a POST with ``{"request_id"}`` in the body and
answers ``IN_QUEUE`` / ``IN_PROGRESS`` / ``COMPLETED`` / ``FAILED``. Errors are
``{"error": "..."}``. Sources and the mock's choices: docs/providers.md#pixazo.
"""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from nanobanana_mock.schemas import Violation

from ..engine import images
from ..engine.jobs import Job, State
from ..http import ApiError, json_response
from .base import Provider

__all__ = ["Pixazo"]

MODEL = "nano-banana-pro"


class Pixazo(Provider, contract="pixazo"):
    def routes(self) -> list[web.RouteDef]:
        return [
            self.route("submit", self.submit),
            self.route("result", self.result),
        ]

    # -- envelopes -------------------------------------------------------------------------
    def error(self, status: int, message: str) -> ApiError:
        return ApiError(status, {"error": message})

    def auth_error(self, missing: bool) -> ApiError:
        return self.error(401, "Invalid or missing authentication")

    def invalid(self, problems: list[Violation]) -> ApiError:
        return self.error(400, "Invalid request parameters: " + "; ".join(map(str, problems)))

    def unknown_job(self, request_id: str) -> ApiError:
        return self.error(404, f"Request {request_id} not found")

    def wait_headers(self, retry: float) -> dict[str, str]:
        # the model page shows no header on its 429: Retry-After is the mock's [INF], in wall
        # seconds as every wait header is
        return {"Retry-After": str(self.state.clock.retry_after(retry))}

    def unknown_route(self, request: web.Request) -> ApiError:
        return self.error(404, "Endpoint not found")

    def bad_method(self, request: web.Request) -> ApiError:
        return self.error(404, "Endpoint not found")  # APIM matches on method and path

    # -- handlers --------------------------------------------------------------------------
    async def submit(self, request: web.Request) -> web.Response:
        job, headers = await self.accept(request, MODEL)
        return json_response(200, {"status": "IN_QUEUE", "request_id": job.id}, headers)

    async def result(self, request: web.Request) -> web.Response:
        owner = self.authenticate(request)
        body = await self.body(request, "result_request")
        job, state = await self.read(request, str(body["request_id"]), owner=owner)
        return json_response(
            self.contract.http_status("result", state), self._state_body(request, job, state)
        )

    def _state_body(self, request: web.Request, job: Job, state: State) -> dict[str, Any]:
        now = self.sim.now()
        body: dict[str, Any] = {"status": self.contract.wire(state), "request_id": job.id}
        if state in (State.QUEUED, State.RUNNING):
            body["queue_position"] = self.sim.queue_position(job, now)
            # an integer, as the model page shows it: whole seconds, rounded up
            body["estimated_remaining_seconds"] = math.ceil(max(0.0, job.end_at - now))
        elif state is State.SUCCEEDED:
            body["images"] = [
                {
                    "url": url,
                    "width": job.output.width,
                    "height": job.output.height,
                    "content_type": images.content_type(job.output.fmt),
                }
                for url in self.image_urls(request, job)
            ]
            body["metadata"] = {
                "processing_time_seconds": round(job.end_at - job.start_at, 1),
                "input_image_count": job.inputs,
            }
        else:
            assert job.failure is not None
            body["error"] = job.failure.error
        return body
