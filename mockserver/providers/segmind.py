"""Segmind (api.segmind.com): ``x-api-key``; ``{"error": "..."}`` envelope; FAILED is 422.

Routes: ``POST /v1/{slug}`` (blocking; answers image bytes when the simulated generation
ends), ``POST /v2/{slug}`` (queue), ``GET /v2/requests/{id}/status``, ``GET /v2/requests/{id}``
(result) and ``GET /v1/requests/{id}`` (the v1 ``poll_url``, answered like status).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from nanobanana_mock.schemas import Violation

from ..engine import images
from ..engine.jobs import Job, State
from ..http import ApiError, BodyError, json_response, origin
from ..oneshot import OneShot
from .base import Provider

__all__ = ["Segmind"]

METHOD_NOT_ALLOWED_HTML = (
    "<!DOCTYPE html><html><head><title>405 Method Not Allowed</title></head>"
    "<body><h1>405 Method Not Allowed</h1></body></html>"
)


class Segmind(Provider, contract="segmind"):
    credits_status = 406

    def routes(self) -> list[web.RouteDef]:
        return [
            self.route("sync_generate", self.sync_generate, "slug"),
            self.route("poll", self.poll),
            self.route("submit", self.submit, "slug"),
            self.route("status", self.status),
            self.route("result", self.result),
        ]

    # -- envelopes -------------------------------------------------------------------------
    def error(self, status: int, message: str) -> ApiError:
        return ApiError(status, {"error": message})

    def auth_error(self, missing: bool) -> ApiError:
        if missing:
            return self.error(401, "Missing Authorization or x-api-key in header")
        return self.error(401, "Unauthorized. API key is invalid or may have expired...")

    def invalid(self, problems: list[Violation]) -> ApiError:
        return self.error(400, "Invalid parameters: " + "; ".join(map(str, problems)))

    def body_error(self, err: BodyError) -> ApiError:
        if err.kind == "content_type":  # Segmind answers a missing or wrong type with 406
            return self.error(406, f"Invalid content type: {err.message}")
        return super().body_error(err)

    def unknown_job(self, request_id: str) -> ApiError:
        return self.error(404, f"Request {request_id} not found")

    def wait_headers(self, retry: float) -> dict[str, str]:
        # Segmind sends only this header on 429, no Retry-After [3P]
        return {"x-rate-limit-reset-at-utc": self.state.clock.reset_at(retry)}

    def insufficient_credits(self, balance: float, cost: float) -> ApiError:
        return self.error(
            406, f"Insufficient credits: balance ${balance:.4f} is below the cost ${cost:.4f}"
        )

    def bad_method(self, request: web.Request) -> ApiError:
        return ApiError(405, METHOD_NOT_ALLOWED_HTML, content_type="text/html")

    # -- handlers --------------------------------------------------------------------------
    async def submit(self, request: web.Request) -> web.Response:
        job, headers = await self.accept(request, request.match_info["slug"])
        base = origin(request)
        return json_response(
            200,
            {
                "request_id": job.id,
                "status": "QUEUED",
                "poll_url": f"{base}/v1/requests/{job.id}",
                "status_url": f"{base}/v2/requests/{job.id}/status",
                "response_url": f"{base}/v2/requests/{job.id}",
            },
            headers,
        )

    async def sync_generate(self, request: web.Request) -> web.Response:
        job, headers, state = await self.settled(request, request.match_info["slug"])
        sim = self.sim
        if state is State.FAILED:
            assert job.failure is not None
            raise self.error(500, job.failure.error)
        data = await sim.image_bytes(job)
        remaining = sim.remaining_credits(job.owner)
        headers.update(
            {
                "x-cost": f"{job.cost:.4f}",
                "x-remaining-credits": f"{remaining:.4f}",
                "x-generation-time": f"{job.end_at - job.start_at:.3f}",
                "x-seed-value": str(self._seed(job)),
                "x-request-id": job.id,
            }
        )
        return OneShot(200, data, headers, images.content_type(job.output.fmt))

    async def status(self, request: web.Request) -> web.Response:
        job, state = await self.read(request, request.match_info["request_id"])
        return self._status_reply(request, "status", job, state)

    async def poll(self, request: web.Request) -> web.Response:
        job, state = await self.read(request, request.match_info["request_id"])
        return self._status_reply(request, "poll", job, state)

    def _status_reply(
        self, request: web.Request, route: str, job: Job, state: State
    ) -> web.Response:
        return json_response(
            self.contract.http_status(route, state), self._status_body(request, job, state)
        )

    async def result(self, request: web.Request) -> web.Response:
        job, state = await self.read(request, request.match_info["request_id"], poll=False)
        code = self.contract.http_status("result", state)
        if state is not State.SUCCEEDED:
            return json_response(code, self._status_body(request, job, state))
        size = job.file_size
        if size is None:  # rendered once; an answer polled again does not touch the cache
            size = job.file_size = len(await self.sim.image_bytes(job))
        url = self.image_urls(request, job)[0]
        ext = images.extension(job.output.fmt)
        return json_response(
            code,
            {
                "status": "COMPLETED",
                "request_id": job.id,
                "error": None,
                "output": url,
                "images": [
                    {
                        "url": url,
                        "content_type": images.content_type(job.output.fmt),
                        "file_name": f"{job.id}.{ext}",
                        "file_size": size,
                    }
                ],
                "seed": self._seed(job),
                "prompt": job.prompt,
                "metrics": {
                    "cost": job.cost,
                    "remaining_credits": round(self.sim.remaining_credits(job.owner), 6),
                    **_timings(job, job.end_at),
                },
            },
        )

    def _status_body(self, request: web.Request, job: Job, state: State) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.contract.wire(state), "request_id": job.id}
        if state is State.SUCCEEDED:
            body["metrics"] = {"inference_time": round(job.end_at - job.start_at, 3)}
        elif state is State.FAILED:
            assert job.failure is not None
            now = self.sim.now()
            body["error"] = job.failure.error
            body["metrics"] = _timings(job, job.finished_at(now) or now)
        else:
            base = origin(request)
            body["status_url"] = f"{base}/v2/requests/{job.id}/status"
            body["response_url"] = f"{base}/v2/requests/{job.id}"
            body["metrics"] = {}
        return body

    def _seed(self, job: Job) -> int:
        seed = job.seed
        return seed if seed is not None else job.image_seed % 2**31


def _timings(job: Job, finished: float) -> dict[str, float]:
    started = min(job.start_at, finished)
    return {
        "inference_time": round(finished - started, 3),
        "queue_time": round(started - job.submitted_at, 3),
        "total_time": round(finished - job.submitted_at, 3),
    }
