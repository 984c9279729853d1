"""Checks of the surfaces that hand the image back in the answer instead of a job to poll:
a blocking generation (Segmind's ``/v1``, Gemini's ``generateContent``) and Gemini's batches,
whose finished batch inlines its answers.

Each function takes the check's :class:`~nanobanana_mock.conformance.probe.Probe`: requests
go where api.json says, bodies are built from the documented requests, findings go to the
run's report. The wire body of an operation whose request is not the model's own schema
comes from the client's adapter, a batch's from its documented example. The three paths into
Gemini's bodies it needs (where a batch holds its requests and its answers, and a candidate's
finish reason) are named once below, each beside the schema it comes from.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image, UnidentifiedImageError

from nanobanana_mock.client.errors import JobFailed
from nanobanana_mock.client.models import Image as Picture
from nanobanana_mock.schemas.checks import BREAKING, Finding, image_findings

from .cost import Plan
from .exchange import Answer, Http
from .facts import documented_body, documented_example
from .probe import DEFAULT_KEY, Probe

__all__ = [
    "DEADLINE_FACTOR",
    "FINISHED",
    "FINISH_POINTER",
    "QUEUE_ALLOWANCE",
    "batch_body",
    "batch_id",
    "batch_images",
    "check_images",
    "check_refused",
    "create_batch",
    "deadline",
    "finding",
    "finish_reason",
    "images_of",
    "send_blocking",
    "unknown_batch_id",
    "wire_body",
]

DEADLINE_FACTOR = 10  # give up after this many typical times (plus a queue allowance)
QUEUE_ALLOWANCE = 300.0
FINISHED = "STOP"  # generate.json's finishReason of a candidate that carries its image
FINISH_POINTER = "/candidates/0/finishReason"  # generate.json
BATCH_REQUESTS = ("batch", "inputConfig", "requests", "requests")  # batch_request.json
BATCH_RESPONSES = ("metadata", "output", "inlinedResponses", "inlinedResponses")  # batch.json


def deadline(probe: Probe) -> float:
    """The longest a job of the probe's model may take: ten typical times plus the queue
    allowance (virtual seconds on the mock)."""
    typical = float(probe.api["models"][probe.model]["typical_seconds"])
    return typical * DEADLINE_FACTOR + QUEUE_ALLOWANCE


def wire_body(probe: Probe, operation: str, flat: Mapping[str, Any]) -> dict[str, Any]:
    """The body ``operation`` takes for a case's request: the request itself when the
    operation's request schema is the model's, else the client's wire form of it
    (Gemini's nested generateContent body)."""
    if probe.operations[operation].get("request") == "model":
        return dict(flat)
    return probe.adapter.body(probe.model, dict(flat))


def batch_body(probe: Probe, operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
    """The documented batch example of ``operation``'s request schema, holding ``request``
    as its only request."""
    name = probe.operations[operation]["request"]
    example = documented_example(probe.provider, name)
    if not isinstance(example, Mapping):
        raise LookupError(f"{probe.provider}: no documented {name} example")
    body = copy.deepcopy(dict(example))
    node: Any = body
    for part in BATCH_REQUESTS[:-1]:
        node = node[part]
    node[BATCH_REQUESTS[-1]] = [{"request": dict(request), "metadata": {"key": "conformance"}}]
    return body


def create_batch(
    probe: Probe, operation: str, plan: Plan, body: Mapping[str, Any], purpose: str = "followed"
) -> tuple[str, Answer]:
    """Book ``plan``, create a batch of the one request ``body`` with ``operation`` (checked:
    200 and its schema): its id and the answer; the check stops when the answer names none
    (the batch cannot be ``purpose``)."""
    probe.spend(plan)
    created = probe.send(
        operation, body=batch_body(probe, operation, wire_body(probe, operation, body))
    )
    probe.check(operation, created, expected={200})
    rid = batch_id(created.json)
    if rid is None:
        probe.stop(f"the batch answer names no batches/<id>; it cannot be {purpose}")
    assert rid is not None
    return rid, created


def batch_id(body: Any) -> str | None:
    """The id a batch answer names (``name``: ``batches/<id>``)."""
    name = body.get("name") if isinstance(body, Mapping) else None
    return name.rsplit("/", 1)[-1] if isinstance(name, str) and "/" in name else None


def unknown_batch_id(probe: Probe, operation: str) -> str:
    """The id of the documented batch answer of ``operation``: well formed, and no batch of
    ours has it."""
    schema = probe.operations[operation]["responses"]["200"]["schema"]
    found = batch_id(documented_body(probe.provider, schema, 200))
    if found is None:
        raise LookupError(f"{probe.provider}: no documented {schema} answer with a name")
    return found


def batch_images(probe: Probe, answer: Answer) -> list[Picture]:
    """The images of a finished batch's inlined answers, in order."""
    node: Any = answer.json
    for part in BATCH_RESPONSES:
        node = node.get(part) if isinstance(node, Mapping) else None
    found: list[Picture] = []
    for item in node if isinstance(node, list) else []:
        response = item.get("response") if isinstance(item, Mapping) else None
        found += _images_in(probe, response)[0]
    return found


def send_blocking(
    probe: Probe, operation: str, body: Any, *, key: Any = DEFAULT_KEY, model: str | None = None
) -> Answer | None:
    """One call of ``operation`` (for ``model``, default the probe's) that answers when its
    job ends, on a connection of its own (the target moves the mock's clock meanwhile); None
    when the job would not end within :func:`deadline`."""
    spec = probe.operations[operation]
    origin = probe.target.origin(probe.provider)
    url = probe.adapter.url(origin, operation, model=model or probe.model)
    headers = probe.headers(key)

    def send() -> Answer:
        http = Http()
        try:
            return http.call(spec["method"], url, headers=headers, json_body=body)
        finally:
            http.close()

    return probe.target.blocking(probe.provider, send, deadline(probe))


def check_refused(probe: Probe, operation: str, answer: Answer, key: Any) -> None:
    """The refusal of a request without a valid key: the code api.json's ``auth.errors``
    declares, in the error envelope, holding the values it names."""
    refusal = probe.refusal(key)
    expected = int(refusal["http_status"])
    probe.check(operation, answer, expected={expected})
    if answer.status != expected:
        return
    for pointer, value in refusal.get("fields", {}).items():
        observed = _at(answer.body, pointer)
        if observed != value:
            probe.record([finding(probe, operation, pointer, repr(value), repr(observed), "auth")])


def images_of(probe: Probe, answer: Answer) -> tuple[list[Picture], str | None]:
    """The images a generation's answer carries (an image body is one; a JSON body is read
    by the client's adapter) and, for JSON, why none came (the finish reason)."""
    if answer.content_type.startswith("image/"):
        return [Picture("", content_type=answer.content_type, data=answer.raw)], None
    return _images_in(probe, answer.json)


def _images_in(probe: Probe, body: Any) -> tuple[list[Picture], str | None]:
    """The images the client's adapter reads from a JSON answer; with none, the reason
    it gives (a finish reason). Data that is no base64 is no image (the schema says why)."""
    if not isinstance(body, Mapping):
        return [], None
    try:
        result = probe.adapter.sync_result(probe.target.origin(probe.provider), probe.model, body)
    except JobFailed as exc:
        return [], exc.error_type
    except ValueError:
        return [], None
    return (list(result.images), None) if result is not None else ([], None)


def finish_reason(answer: Answer) -> Any:
    """A generateContent answer's finish reason (None in any other answer)."""
    return _at(answer.body, FINISH_POINTER)


def check_images(probe: Probe, operation: str, images: Sequence[Picture], plan: Plan) -> None:
    """Each image decodes as its advertised type at exactly the size the request implies."""
    if len(images) != plan.count:
        probe.record(
            [
                finding(
                    probe,
                    operation,
                    "",
                    f"{plan.count} image(s)",
                    f"{len(images)} image(s)",
                    "image",
                )
            ]
        )
    for index, image in enumerate(images):
        kind, size = _decoded(image.data or b"")
        if plan.size is None:
            continue
        probe.record(
            image_findings(
                probe.provider,
                request=f"{probe.label(operation)} image {index}",
                advertised={"content_type": image.content_type},
                content_type=kind,
                size=size,
                expected_size=plan.size,
            )
        )


def _decoded(data: bytes) -> tuple[str | None, tuple[int, int] | None]:
    try:
        with Image.open(io.BytesIO(data)) as picture:
            return Image.MIME.get(picture.format or ""), picture.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None, None


def _at(body: Any, pointer: str) -> Any:
    node = body
    for part in pointer.split("/")[1:]:
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def finding(
    probe: Probe, operation: str, pointer: str, expected: str, observed: str, check: str
) -> Finding:
    """A breaking finding of ``check`` about the probe's ``operation``."""
    request = probe.label(operation)
    return Finding(probe.provider, operation, request, pointer, expected, observed, BREAKING, check)
