"""SeaArt / SeaCloud (cloud.seaart.ai/model): ``Authorization: Key|Bearer``; fal's queue.

Only three status strings exist: ``IN_QUEUE``, ``IN_PROGRESS`` and ``COMPLETED``; failure and
cancellation are ``COMPLETED`` with ``error`` and ``error_type``. The result route answers 202
with the status body until the job is terminal. Request ids are scoped to their endpoint and
key. Gateway errors use ``{"error": {code, message}, "request_id"}``, the app uses FastAPI's
``{"detail": ...}``.
"""

from __future__ import annotations

import random
from typing import Any

from aiohttp import web

from ..engine import images
from ..engine.jobs import Job
from ..http import ApiError
from ..store.tenant import current
from .queue import QueueProvider

__all__ = ["SeaArt"]

CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


class SeaArt(QueueProvider, contract="seaart"):
    def routes(self) -> list[web.RouteDef]:
        return [
            *super().routes(),
            self.route("sync", self.no_sync, "endpoint"),
            self.route("stream", self.no_stream, "endpoint"),
        ]

    @staticmethod
    def new_id(rng: random.Random) -> str:
        return "mmsu_" + "".join(rng.choice(CROCKFORD) for _ in range(26))

    # -- envelopes: the gateway's, in front of the app's FastAPI ones ------------------------
    def gateway_error(self, status: int, code: str, message: str) -> ApiError:
        # a draw outside any operation: from a stream the tenant shares (tenant.py, ``draws``)
        gateway_id = f"{current().draws('seaart-gateway').getrandbits(64):016x}"
        return ApiError(
            status, {"error": {"code": code, "message": message}, "request_id": gateway_id}
        )

    def auth_error(self, missing: bool) -> ApiError:
        if missing:
            return self.gateway_error(
                401, "UNAUTHORIZED", "Authorization Bearer or Key token is required"
            )
        return self.gateway_error(401, "UNAUTHORIZED", "Invalid API key")

    def unknown_model(self, name: str) -> ApiError:
        return self.error(404, f"App not found: {name}")

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

    # -- handlers --------------------------------------------------------------------------
    async def no_sync(self, request: web.Request) -> web.Response:
        self.authenticate(request)
        raise self.error(404, "Not Found")

    async def no_stream(self, request: web.Request) -> web.Response:
        self.authenticate(request)
        raise self.error(400, "SSE streaming not supported")

    def result_body(self, request: web.Request, job: Job) -> dict[str, Any]:
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
        return {"request_id": job.id, "outputs": outputs, "metadata": {"prompt": job.prompt}}

    # -- webhooks are refused --------------------------------------------------------------
    def screen(self, request: web.Request) -> None:
        """Webhook info in the query or headers is rejected before the model and body."""
        names = [*request.query.keys(), *request.headers.keys()]
        if any("webhook" in name.lower() for name in names):
            raise self.error(400, "webhook not supported")

    def precheck(self, body: Any) -> None:
        if isinstance(body, dict) and any("webhook" in str(k).lower() for k in body):
            raise self.error(400, "webhook not supported")
