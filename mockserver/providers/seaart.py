"""SeaArt / SeaCloud (cloud.seaart.ai/model): ``Authorization: Key|Bearer``; fal-style queue.

Only three status strings exist: ``IN_QUEUE``, ``IN_PROGRESS`` and ``COMPLETED``; failure and
cancellation are ``COMPLETED`` with ``error`` and ``error_type``. The result route answers 202
with the status body until the job is terminal. Request ids are scoped to their endpoint and
key. Gateway errors use ``{"error": {code, message}, "request_id"}``, the app uses FastAPI's
``{"detail": ...}``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from nanobanana_mock.schemas import Violation

from ..engine import images
from ..engine.jobs import Failure, Job, State
from ..http import ApiError, BodyError, json_response, origin
from .base import JOB_STATE_HEADER, Provider

__all__ = ["SeaArt"]

BASE = "/model/v1/queue"
CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
CANCELED = Failure(error="Request was canceled by the user", error_type="CANCELED")


class SeaArt(Provider, contract="seaart"):
    def routes(self) -> list[web.RouteDef]:
        req = BASE + "/{endpoint}/requests/{request_id}"
        return [
            web.post(BASE + "/{endpoint}", self.submit, name="seaart.submit"),
            web.post(BASE + "/{endpoint}/sync", self.no_sync, name="seaart.sync"),
            web.get(req + "/status", self.status, name="seaart.status"),
            web.get(req + "/status/stream", self.no_stream, name="seaart.stream"),
            web.get(req + "/response", self.result, name="seaart.result"),
            web.put(req + "/cancel", self.cancel, name="seaart.cancel"),
        ]

    def new_id(self) -> str:
        rng = self.state.rng(self.name)
        return "mmsu_" + "".join(rng.choice(CROCKFORD) for _ in range(26))

    # -- envelopes -------------------------------------------------------------------------
    def error(self, status: int, message: str) -> ApiError:
        return ApiError(status, {"detail": message})

    def gateway_error(self, status: int, code: str, message: str) -> ApiError:
        gateway_id = f"{self.state.rng('seaart-gateway').getrandbits(64):016x}"
        return ApiError(
            status, {"error": {"code": code, "message": message}, "request_id": gateway_id}
        )

    def auth_error(self, missing: bool) -> ApiError:
        if missing:
            return self.gateway_error(
                401, "UNAUTHORIZED", "Authorization Bearer or Key token is required"
            )
        return self.gateway_error(401, "UNAUTHORIZED", "Invalid API key")

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

    def special_fault(self, status: int, message: str | None, retry: float) -> ApiError | None:
        if status == 401:
            return self.gateway_error(401, "UNAUTHORIZED", message or self.fault_messages[401])
        if status == 429:
            return self.gateway_error(
                429, "RATE_LIMIT_EXCEEDED", message or self.fault_messages[429]
            )
        if status == 402:  # the CLI's test mock [SDK]; not in the public docs
            body = {
                "status": {
                    "code": 402,
                    "message": message or self.fault_messages[402],
                    "error_code": 40201,
                },
                "data": None,
            }
            return ApiError(402, body)
        return None

    def bad_method(self, request: web.Request) -> ApiError:
        return self.error(405, "Method Not Allowed")

    # -- handlers --------------------------------------------------------------------------
    async def submit(self, request: web.Request) -> web.Response:
        owner = self.authenticate(request)
        self._refuse_webhooks(request)
        endpoint = request.match_info["endpoint"]
        model = self.model(endpoint)
        if model is None:
            raise self.error(404, f"App not found: {endpoint}")
        body = await self.body(request, model.request_schema)
        job = self.new_job(request, model, body, owner)
        urls = self._urls(request, job)
        return json_response(
            200,
            {
                "request_id": job.id,
                "response_url": urls["response_url"],
                "status_url": urls["status_url"],
                "cancel_url": urls["cancel_url"],
                "queue_position": 0,  # documented: "currently returned as a fixed value of 0"
            },
            self.warn_unknown(model.request_schema, body),
        )

    async def no_sync(self, request: web.Request) -> web.Response:
        self.authenticate(request)
        raise self.error(404, "Not Found")

    async def no_stream(self, request: web.Request) -> web.Response:
        self.authenticate(request)
        raise self.error(400, "SSE streaming not supported")

    async def status(self, request: web.Request) -> web.Response:
        job = self._job(request)
        job.polls += 1
        state = job.state(self.now())
        return json_response(
            self.contract.http_status("status", state), self._status_body(request, job, state)
        )

    async def result(self, request: web.Request) -> web.Response:
        job = self._job(request)
        state = job.state(self.now())
        code = self.contract.http_status("result", state)
        if state is not State.SUCCEEDED:
            return json_response(code, self._status_body(request, job, state))
        ext = images.extension(job.output.fmt)
        outputs = [
            {
                "type": "image",
                "url": url,
                "content_type": images.content_type(job.output.fmt),
                "file_name": f"image.{ext}" if job.output.count == 1 else f"image_{i + 1}.{ext}",
                "width": job.output.width,
                "height": job.output.height,
            }
            for i, url in enumerate(self.image_urls(request, job))
        ]
        body = {
            "request_id": job.id,
            "outputs": outputs,
            "metadata": {"prompt": job.prompt},
        }
        return json_response(code, body)

    async def cancel(self, request: web.Request) -> web.Response:
        owner = self.authenticate(request)
        request_id, endpoint = request.match_info["request_id"], request.match_info["endpoint"]
        job = self.state.store.find(self.name, request_id, owner, self.now())
        if job is None or job.model != endpoint:
            fate = self.fate(request_id, owner, request, endpoint)
            return json_response(404, {"status": "NOT_FOUND"}, {JOB_STATE_HEADER: fate})
        if not self.state.store.cancel(job, self.now()):
            return json_response(400, {"status": "ALREADY_COMPLETED"})
        return json_response(202, {"status": "CANCELLATION_REQUESTED"})

    # -- helpers ---------------------------------------------------------------------------
    def _job(self, request: web.Request) -> Job:
        owner = self.authenticate(request)
        # ids are scoped to their endpoint
        return self.find(
            request.match_info["request_id"], owner, request, request.match_info["endpoint"]
        )

    def precheck(self, body: Any) -> None:
        if isinstance(body, dict) and any("webhook" in str(k).lower() for k in body):
            raise self.error(400, "webhook not supported")

    def _refuse_webhooks(self, request: web.Request) -> None:
        """Webhook info in the query or headers is rejected before anything else."""
        names = [*request.query.keys(), *request.headers.keys()]
        if any("webhook" in name.lower() for name in names):
            raise self.error(400, "webhook not supported")

    def _urls(self, request: web.Request, job: Job) -> dict[str, str]:
        base = f"{origin(request)}{BASE}/{job.model}/requests/{job.id}"
        return {
            "response_url": f"{base}/response",
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }

    def _status_body(self, request: web.Request, job: Job, state: State) -> dict[str, Any]:
        now = self.now()
        body: dict[str, Any] = {
            "status": self.contract.wire(state),
            "request_id": job.id,
            "response_url": self._urls(request, job)["response_url"],
        }
        if state is State.QUEUED:
            body["queue_position"] = self.state.store.queue_position(job, now)
        elif state is State.SUCCEEDED:
            body["metrics"] = {"inference_time": round(job.end_at - job.start_at, 3)}
        elif state in (State.FAILED, State.CANCELLED):
            failure = CANCELED if state is State.CANCELLED else job.failure
            assert failure is not None
            body["error"] = failure.error
            body["error_type"] = failure.error_type
        return body
