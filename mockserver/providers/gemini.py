"""Google's Gemini API (native Nano Banana): ``x-goog-api-key`` or ``?key=``; Google's
``{"error": {code, message, status}}`` envelope; a blocked image is a 200 with a blocking
``finishReason``.

Routes: ``POST /v1beta/models/{model}:generateContent`` and ``POST /v1/models/{model}:
generateContent`` (google-genai 3.x), one blocking call each: the job runs on the shared
engine and the answer carries the image as base64 ``inlineData`` when it ends, as Segmind's
``/v1`` answers its bytes. The wire body is nested; :meth:`Gemini.as_job` flattens it into
what ``request.<model>.json`` checks and the simulator reads. Batches (each under both
versions too): ``models/{model}:batchGenerateContent``, ``GET batches`` (a key's own, newest
first, paged by an opaque token), ``GET``/``DELETE batches/{id}`` and ``batches/{id}:cancel``;
a batch is one job of kind ``batch``, and a generateContent job is never shown as one.
"""

from __future__ import annotations

import base64
import binascii
import functools
import itertools
import math
import re
from contextvars import ContextVar
from typing import Any

from aiohttp import web

from nanobanana_mock import schemas
from nanobanana_mock.schemas import Violation, explain, is_valid

from ..contracts import Model
from ..engine import images
from ..engine.clock import utc_stamp
from ..engine.jobs import Job, State
from ..engine.simulation import NotCancellable, UnknownJob
from ..http import ApiError, BodyError, json_response
from ..pipeline.call import call_of
from ..store.tenant import current
from .base import Provider

__all__ = ["Gemini"]

WIRE = "generate_request"  # the nested body, checked before the model's flat schema
BATCH = "batch_request"  # a batch of them
REASON = "/error/details/0/reason"  # api.json auth.errors: the ErrorInfo reason of a wrong key
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
_IN_BATCH: ContextVar[bool] = ContextVar("gemini_batch", default=False)  # this request's kind
STATUS = {  # google.rpc.Code names by HTTP status
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# each flat field the model schemas check, and the wire field it was read from
WIRE_NAMES = {
    "prompt": "contents[].parts[].text",
    "aspect_ratio": "generationConfig.imageConfig.aspectRatio",
    "image_size": "generationConfig.imageConfig.imageSize",
    "response_modalities": "generationConfig.responseModalities",
    "seed": "generationConfig.seed",
    "inputs": "contents[].parts[].inlineData",
}
FINISH_REASONS = frozenset(
    schemas.load("gemini", "generate")["$defs"]["candidate"]["properties"]["finishReason"]["enum"]
)
# a failed job's error_type, when its error names no finish reason (api.json's description)
BY_TYPE = {
    "CONTENT_BLOCKED": "IMAGE_SAFETY",
    "REQUEST_INVALID": "NO_IMAGE",
    "INFERENCE_FAILURE": "IMAGE_OTHER",
}
AS_ERROR = {"INTERNAL_SERVER_ERROR": 500, "INFERENCE_TIMEOUT": 504}
IMAGE_TOKENS: dict[str, dict[str, int]] = schemas.load("gemini", "generate")["imageTokens"]
RATIOS = tuple(
    schemas.load("gemini", "generate_request")["properties"]["generationConfig"]["properties"][
        "imageConfig"
    ]["properties"]["aspectRatio"]["enum"]
)
MAX_PARTS = 10_000  # parts a prompt is read from (the schema bounds a valid body far lower)
KIND = "batch"  # the kind (Job.kind) of a batch's job; a generateContent job has none
# a listing's pages (api.json batch_list): the default and largest pageSize, and the token
PAGE_SIZE, MAX_PAGE_SIZE = 50, 100
TOKEN = re.compile(r"batches:([1-9][0-9]{0,17})")  # what a page token holds: a job's seq
INT32 = re.compile(r"-?[0-9]{1,10}")  # a pageSize the mock reads (then within int32)
MAX_TOKEN = 64  # characters of a page token read (the mock's are about 20)


class Gemini(Provider, contract="gemini"):
    credits_status = 429  # Google's prepaid billing answers RESOURCE_EXHAUSTED when depleted
    prefixes = ("/v1beta/", "/v1/models/", "/v1/batches")  # /v1/ is Segmind's

    def routes(self) -> list[web.RouteDef]:
        handlers = {
            "sync_generate": self.generate,
            "batch_create": self.batch_create,
            "batch_get": self.batch_get,
            "batch_cancel": self.batch_cancel,
            "batch_list": self.batch_list,
            "batch_delete": self.batch_delete,
        }
        return [  # each under /v1beta/ and, as <operation>_stable, under /v1/
            _no_colon(self.route(operation + version, handler, "slug"))
            for operation, handler in handlers.items()
            for version in ("", "_stable")
        ]

    # -- envelopes -------------------------------------------------------------------------
    def error(self, status: int, message: str, details: list[Any] | None = None) -> ApiError:
        body: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": STATUS.get(status, "UNKNOWN" if status < 500 else "INTERNAL"),
        }
        if details:
            body["details"] = details
        return ApiError(status, {"error": body})

    def auth_error(self, missing: bool) -> ApiError:
        """The refusal api.json's ``auth.errors`` declares (its code; for a wrong key, the
        ErrorInfo reason), in Google's envelope."""
        declared = self.contract.auth["errors"]["missing" if missing else "invalid"]
        status = int(declared["http_status"])
        if missing:
            return self.error(
                status,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        reason = declared.get("fields", {}).get(REASON)
        info = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
        text = "API key not valid. Please pass a valid API key."
        return self.error(status, text, [info] if reason else None)

    def invalid(self, problems: list[Violation]) -> ApiError:
        shown = []
        for problem in map(str, problems):
            for flat, wire in WIRE_NAMES.items():
                if problem.startswith(flat + ":"):
                    problem = wire + problem[len(flat) :]
                    break
            shown.append(problem)
        return self.error(400, "Invalid value: " + "; ".join(shown))

    def body_error(self, err: BodyError) -> ApiError:
        status = 413 if err.kind in ("too_large", "too_deep") else 400
        return self.error(status, f"Invalid JSON payload received. {err.message}")

    def unknown_job(self, request_id: str) -> ApiError:
        return self.error(404, f"Requested entity was not found: {request_id}")

    def unknown_model(self, name: str) -> ApiError:
        return self.error(
            404,
            f"models/{name} is not found for API version v1beta, or is not supported for "
            "generateContent. Call ListModels to see the list of available models and their "
            "supported methods.",
        )

    def special_fault(self, status: int, message: str | None, retry: float) -> ApiError | None:
        if status != 429:
            return None
        wait = self.state.clock.retry_after(retry)
        info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{wait}s"}
        text = message or self.fault_messages[429]
        return self.error(429, text, [info])

    def insufficient_credits(self, balance: float, cost: float) -> ApiError:
        return self.error(
            429,
            f"Your prepayment credits are depleted: balance ${balance:.4f} is below the cost "
            f"${cost:.4f}. Please go to AI Studio to manage your project and billing.",
        )

    # -- the request -----------------------------------------------------------------------
    def api_key(self, request: web.Request) -> str | None:
        """The ``x-goog-api-key`` header, else the ``key`` query parameter [DOC]."""
        return super().api_key(request) or request.query.get("key", "").strip() or None

    def as_job(self, body: Any) -> Any:
        """The nested body checked, then flattened for ``request.<model>.json``; a batch is
        planned as its first request, one image per request."""
        if _IN_BATCH.get():
            if not is_valid(self.name, BATCH, body):
                raise self.invalid(explain(self.name, BATCH, body))
            requests = body["batch"]["inputConfig"]["requests"]["requests"]
            return {**_flat(requests[0]["request"]), "num_images": len(requests)}
        if not is_valid(self.name, WIRE, body):
            raise self.invalid(explain(self.name, WIRE, body))
        return _flat(body)

    def prompt_of(self, body: Any) -> str | None:
        if isinstance(body, dict) and isinstance(body.get("batch"), dict):
            try:  # a batch: its first request's
                body = body["batch"]["inputConfig"]["requests"]["requests"][0]["request"]
            except (KeyError, IndexError, TypeError):
                return None
        contents = body.get("contents") if isinstance(body, dict) else None
        if not isinstance(contents, list):
            return None
        parts = (
            part
            for content in contents[:MAX_PARTS]
            if isinstance(content, dict) and isinstance(content.get("parts"), list)
            for part in content["parts"]
            if isinstance(part, dict)
        )
        return _text(list(itertools.islice(parts, MAX_PARTS))) or None

    # -- the handler -----------------------------------------------------------------------
    async def generate(self, request: web.Request) -> web.Response:
        job, headers, state = await self.settled(request, request.match_info["slug"])
        sim = self.sim
        call = call_of(request)
        asked = self.as_job(await call.body(request, self.state.config.max_body_bytes))
        if state is State.FAILED:
            return json_response(200, self._blocked(job, asked), headers)
        modalities = asked.get("response_modalities", ["TEXT", "IMAGE"])
        parts: list[dict[str, Any]] = []
        if "TEXT" in modalities:
            parts.append({"text": "Here is the image you asked for."})
        image_tokens = 0
        if "IMAGE" in modalities:
            data = await sim.image_bytes(job)
            mime = images.content_type(job.output.fmt)
            parts.append({"inlineData": {"mimeType": mime, "data": _b64(data)}})
            image_tokens = self._image_tokens(job)
        body = self._answer(job, asked, parts, image_tokens, "STOP")
        return json_response(200, body, headers)

    async def batch_create(self, request: web.Request) -> web.Response:
        token = _IN_BATCH.set(True)
        try:
            job, headers = await self.accept(request, request.match_info["slug"], kind=KIND)
        finally:
            _IN_BATCH.reset(token)
        return json_response(200, await self._batch(job, State.QUEUED), headers)

    async def batch_get(self, request: web.Request) -> web.Response:
        job, state = await self.read(request, request.match_info["request_id"], kind=KIND)
        code = self.contract.http_status("batch", state)
        return json_response(code, await self._batch(job, state))

    async def batch_cancel(self, request: web.Request) -> web.Response:
        owner = self.authenticate(request)
        rid = request.match_info["request_id"]
        _, state = await self.read(request, rid, poll=False, owner=owner, kind=KIND)
        try:
            await current().do("cancel", self.name, rid, owner, None)
        except NotCancellable:
            raise self.error(400, f"Batch batches/{rid} has already ended ({state}).") from None
        return json_response(200, {})

    async def batch_list(self, request: web.Request) -> web.Response:
        """The key's batches, newest first, a page at a time (api.json batch_list)."""
        owner = self.authenticate(request)
        size = self._page_size(request.query.get("pageSize", ""))
        before = self._page_token(request.query.get("pageToken", ""))
        tenant = current()
        await tenant.sync()  # a listing is a read: the copy up to date, no operation
        sim = tenant.state.sim
        jobs = sim.newest(self.name, owner, KIND, before, size + 1)
        now = sim.now()
        body: dict[str, Any] = {}
        if jobs:  # proto3 JSON leaves an empty list out
            body["operations"] = [await self._batch(j, j.state(now), False) for j in jobs[:size]]
        if len(jobs) > size:
            body["nextPageToken"] = _token(jobs[size - 1].seq)
        return json_response(200, body)

    async def batch_delete(self, request: web.Request) -> web.Response:
        """Forget the key's batch (not cancelled: api.json batch_delete); 404 once gone."""
        owner = self.authenticate(request)
        rid = request.match_info["request_id"]
        try:
            await current().do("delete", self.name, rid, owner, KIND)
        except UnknownJob as missing:
            raise self.gone(request, missing) from None
        return json_response(200, {})

    def _page_size(self, asked: str) -> int:
        """``pageSize``: absent or 0 the default, above the largest clamped to it [AIP-158];
        negative or not an int32, 400."""
        if not asked:
            return PAGE_SIZE
        if INT32.fullmatch(asked) is None or int(asked) > 2**31 - 1:
            shown = asked[:40].encode("unicode_escape").decode("ascii")
            raise self.error(400, f"Invalid value at 'page_size' (TYPE_INT32), \"{shown}\"")
        size = int(asked)
        if size < 0:
            raise self.error(400, "page_size must not be negative.")
        return min(size, MAX_PAGE_SIZE) or PAGE_SIZE

    def _page_token(self, token: str) -> int | None:
        """The ``seq`` a ``pageToken`` of :func:`_token` holds (none for the first page);
        any other, 400."""
        if not token:
            return None
        match = None
        if len(token) <= MAX_TOKEN:
            try:
                text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
                match = TOKEN.fullmatch(text.decode("ascii"))
            except (binascii.Error, ValueError):
                match = None
        if match is None or _token(int(match.group(1))) != token:  # (base64 skips junk)
            raise self.error(400, "Invalid page token.")
        return int(match.group(1))

    async def _batch(self, job: Job, state: State, output: bool = True) -> dict[str, Any]:
        """A batch as GET batches/{id} shows it; a listing's leaves its ``output`` out."""
        now = self.sim.now()
        count = job.output.count
        metadata: dict[str, Any] = {
            "@type": BATCH_TYPE,
            "name": f"batches/{job.id}",
            "model": f"models/{job.model}",
            "displayName": f"batch {job.id}",
            "state": self.contract.wire(state),
            "createTime": utc_stamp(job.submitted_at),
            "updateTime": utc_stamp(now),
            "batchStats": {"requestCount": str(count)},
        }
        ended = job.finished_at(now)
        if ended is not None:
            metadata["endTime"] = utc_stamp(ended)
        if state is State.SUCCEEDED:
            metadata["batchStats"]["successfulRequestCount"] = str(count)
        if state is State.SUCCEEDED and output:
            asked = {"prompt": job.prompt}
            tokens = self._image_tokens(job)
            mime = images.content_type(job.output.fmt)
            responses = []
            for index in range(count):
                data = await self.sim.image_bytes(job, index)
                part = {"inlineData": {"mimeType": mime, "data": _b64(data)}}
                responses.append({"response": self._answer(job, asked, [part], tokens, "STOP")})
            metadata["output"] = {"inlinedResponses": {"inlinedResponses": responses}}
        body: dict[str, Any] = {"name": f"batches/{job.id}", "metadata": metadata}
        if ended is not None:
            body["done"] = True
        return body

    def _blocked(self, job: Job, asked: dict[str, Any]) -> dict[str, Any]:
        """A failed job: a finishReason with no image, or the error its type asks for."""
        failure = job.failure
        assert failure is not None
        if failure.error in FINISH_REASONS:
            reason = failure.error
        elif failure.error_type in AS_ERROR:
            raise self.fault_error(AS_ERROR[failure.error_type], failure.error)
        else:
            reason = BY_TYPE.get(failure.error_type, "IMAGE_OTHER")
        return self._answer(job, asked, None, 0, reason)

    def _answer(
        self,
        job: Job,
        asked: dict[str, Any],
        parts: list[dict[str, Any]] | None,
        image_tokens: int,
        reason: str,
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"finishReason": reason, "index": 0}
        if parts is not None:
            candidate = {"content": {"role": "model", "parts": parts}, **candidate}
        prompt_tokens = math.ceil(len(asked["prompt"]) / 4)
        text_tokens = 10 if parts and "text" in parts[0] else 0
        usage: dict[str, Any] = {
            "promptTokenCount": prompt_tokens,
            "totalTokenCount": prompt_tokens + text_tokens + image_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
        }
        if parts:
            usage["candidatesTokenCount"] = text_tokens + image_tokens
            usage["candidatesTokensDetails"] = [
                {"modality": kind, "tokenCount": count}
                for kind, count in (("TEXT", text_tokens), ("IMAGE", image_tokens))
                if count
            ]
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": job.model,
            "responseId": job.id,
        }

    def _image_tokens(self, job: Job) -> int:
        """The documented tokens of one image (generate.json's imageTokens), by the size tier
        whose pixel size the job's image has."""
        table = IMAGE_TOKENS.get(job.model) or IMAGE_TOKENS["*"]
        return table.get(_tier(self.contract.models[job.model], job), max(table.values()))


def _no_colon(route: web.RouteDef) -> web.RouteDef:
    """A batch id never holds ':', so GET batches/{id} leaves batches/{id}:cancel alone (a
    405 there names POST only)."""
    path = route.path.replace("{request_id}", "{request_id:[^/:]+}")
    return web.RouteDef(route.method, path, route.handler, route.kwargs)


def _token(seq: int) -> str:
    """The opaque ``nextPageToken`` of a page whose last batch is the job of ``seq``."""
    return base64.urlsafe_b64encode(f"batches:{seq}".encode("ascii")).decode("ascii").rstrip("=")


def _flat(body: dict[str, Any]) -> dict[str, Any]:
    """A generateContent body as the model schemas and the simulator read it."""
    config = body.get("generationConfig") or {}
    image = config.get("imageConfig") or {}
    parts = [part for content in body["contents"] for part in content["parts"]]
    job: dict[str, Any] = {"prompt": _text(parts)}
    for flat, value in (
        ("aspect_ratio", image.get("aspectRatio")),
        ("image_size", image.get("imageSize")),
        ("response_modalities", config.get("responseModalities")),
        ("seed", config.get("seed")),
    ):
        if value is not None:
            job[flat] = value
    inputs = sum(1 for part in parts if "inlineData" in part or "fileData" in part)
    if inputs:
        job["inputs"] = inputs
    return job


def _tier(model: Model, job: Job) -> str:
    """The size tier (512, 1K, 2K, 4K) that gives the job's image its pixel size."""
    return _tiers(model.image_family).get((job.output.width, job.output.height), "1K")


@functools.cache
def _tiers(family: str) -> dict[tuple[int, int], str]:
    """Each pixel size of ``family`` and the first tier (of 512, 1K, 2K, 4K) giving it, worked
    out once per family."""
    found: dict[tuple[int, int], str] = {}
    for tier in images.TIERS:
        for ratio in RATIOS:
            try:
                found.setdefault(images.pixel_size(family, ratio, tier), tier)
            except ValueError:
                continue
    return found


def _text(parts: list[Any]) -> str:
    return "\n".join(part["text"] for part in parts if isinstance(part.get("text"), str))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
