"""One adapter per provider, holding only what differs: request building and answer parsing.

Paths, auth headers, model lists, request field names, the wire status strings and the HTTP
code of each state come from the contracts in ``schemas/`` (api.json, lifecycle.json): the
adapters restate none of them.
"""

from __future__ import annotations

import base64
import io
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from nanobanana_mock import schemas
from nanobanana_mock.schemas import hosts, media
from nanobanana_mock.schemas.lifecycle import EXPIRED

from .errors import ConfigurationError, JobFailed, message_of
from .models import Image, JobHandle, JobStatus, Metrics, Result, StatusReport

__all__ = ["ADAPTERS", "Adapter", "Call", "adapter"]

_REGISTERED: dict[str, type[Adapter]] = {}  # by contract name, filled as the classes below are made


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request to make: which operation of the contract it is, and how."""

    operation: str
    method: str
    url: str
    json: Any = None


class Adapter:
    """One provider's requests and answers. A subclass registers for its contract folder with
    ``class Name(Adapter, contract="name")``, which reads its identity from
    ``schemas/<name>/api.json``: the variables of its key and base URL (``environment``)
    and its real origin (``origin``)."""

    name: ClassVar[str]
    key_env: ClassVar[tuple[str, ...]]  # api.json environment.api_key: the first set one wins
    base_env: ClassVar[str]  # api.json environment.base_url
    default_base: ClassVar[str]  # api.json origin; api.json paths include the base path

    def __init_subclass__(cls, contract: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if contract is None:  # a shared base, not a provider's adapter
            return
        if contract not in schemas.PROVIDERS:
            raise TypeError(
                f"{cls.__qualname__}: no contract folder schemas/{contract}/ with an api.json; "
                f"the contracts are: {', '.join(schemas.PROVIDERS)}"
            )
        if contract in _REGISTERED:
            raise TypeError(f"{cls.__qualname__}: an adapter for {contract!r} is registered")
        api = schemas.load(contract, "api")
        cls.name = contract
        cls.key_env = tuple(api["environment"]["api_key"])
        cls.base_env = api["environment"]["base_url"]
        cls.default_base = api["origin"]
        _REGISTERED[contract] = cls

    def __init__(self) -> None:
        self.api = schemas.load(self.name, "api")
        self.lifecycle = schemas.load(self.name, "lifecycle")
        self._wire: dict[str, list[JobStatus]] = {}
        for state, info in self.lifecycle["states"].items():
            self._wire.setdefault(info["wire"], []).append(JobStatus(state))

    # -- configuration --------------------------------------------------------------------
    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self.api["models"])

    def key_from_env(self) -> str | None:
        for name in self.key_env:
            if os.environ.get(name):
                return os.environ[name]
        return None

    def origin(self, base_url: str | None) -> str:
        """The origin to talk to; the provider's usual base URLs are accepted too
        (``…/v1`` for the Segmind SDK, ``…/model`` for SeaArt), and so is a host map
        (``queue.fal.run=http://…``: fal's real layout elsewhere, ``schemas.hosts``)."""
        base = (base_url or os.environ.get(self.base_env) or self.default_base).strip()
        if hosts.is_host_map(base):
            try:
                hosts.parse_host_map(self.api, base)
            except ValueError as exc:
                raise ConfigurationError(f"{self.name}: {exc}") from None
            return base
        base = base.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"{self.name}: base URL must start with http(s)://, got {base!r}"
            )
        own = (self.api["base_url_path"], self.api["base_path"], *self.api.get("hosts", ()))
        suffixes = [s for s in dict.fromkeys((*own, "/v1", "/v2", "/queue")) if s]
        stripped = True
        while stripped:
            stripped = False
            for suffix in suffixes:
                if base.endswith(suffix):
                    base, stripped = base[: -len(suffix)], True
        return base

    def headers(self, key: str) -> dict[str, str]:
        auth = self.api["auth"]
        schemes = auth.get("schemes") or []
        value = f"{schemes[0]} {key}" if schemes else key
        return {auth["header"]: value, "Content-Type": "application/json"}

    def check_model(self, model: str) -> None:
        if model not in self.api["models"]:
            raise ConfigurationError(
                f"{self.name} has no model {model!r}; models: {', '.join(self.models)}"
            )

    def body(self, model: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """A request body from generic names (aspect_ratio, resolution, output_format,
        num_images, image_urls, prompt) and the provider's own field names."""
        self.check_model(model)
        info = self.api["models"][model]
        properties = schemas.load(self.name, info["request"]).get("properties", {})
        body: dict[str, Any] = {}
        for name, value in params.items():
            if value is None:
                continue
            fields = info["fields"].get(name)
            if fields is None:
                body[name] = value
                continue
            if not fields:
                raise ConfigurationError(f"{self.name} {model} does not take {name}")
            field, spelled = _field_and_spelling(fields, value, properties)
            body[field] = spelled
        return body

    # -- requests -------------------------------------------------------------------------
    def path(self, operation: str, **values: str) -> str:
        template: str = self.api["operations"][operation]["path"]
        return template.format(**values)

    def url(self, origin: str, operation: str, **values: str) -> str:
        """The operation's URL on ``origin``: the mock's, or the real hosts' layout."""
        return hosts.url(self.api, origin, self.path(operation, **values))

    def rebased(self, handle: JobHandle, origin: str) -> JobHandle:
        """``handle``'s job reached through ``origin``: its URLs moved from its base URL's
        layout to ``origin``'s (fal's real hosts or the mock's prefixes, ``schemas.hosts``)."""
        return handle.rebased(
            origin, lambda url: hosts.rebase(self.api, url, handle.base_url, origin)
        )

    def submit_call(self, origin: str, model: str, body: Mapping[str, Any]) -> Call:
        return Call("submit", "POST", self.url(origin, "submit", model=model), dict(body))

    def _job_url(self, operation: str, handle: JobHandle) -> str:
        return self.url(
            handle.base_url, operation, model=handle.model, request_id=handle.request_id
        )

    def status_call(self, handle: JobHandle) -> Call:
        return Call("status", "GET", handle.status_url or self._job_url("status", handle))

    def result_call(self, handle: JobHandle) -> Call:
        return Call("result", "GET", handle.response_url or self._job_url("result", handle))

    def cancel_call(self, handle: JobHandle) -> Call | None:
        """The contract's ``cancel`` operation, or None when the provider has none."""
        operation = self.api["operations"].get("cancel")
        if operation is None:
            return None
        url = handle.cancel_url or self._job_url("cancel", handle)
        return Call("cancel", operation["method"], url)

    def state_codes(self, route: str) -> frozenset[int]:
        """The HTTP codes with which ``route`` answers a job's state (Segmind FAILED: 422)."""
        codes = self.lifecycle["http_status"].get(route, {})
        return frozenset(code for state, code in codes.items() if state != EXPIRED)

    # -- answers --------------------------------------------------------------------------
    def handle(self, origin: str, model: str, body: Mapping[str, Any]) -> JobHandle:
        return JobHandle(
            provider=self.name,
            model=model,
            request_id=str(body["request_id"]),
            base_url=origin,
            status_url=body.get("status_url"),
            response_url=body.get("response_url"),
            cancel_url=body.get("cancel_url"),
            submitted_at=time.time(),
        )

    def report(self, http_status: int, body: Any) -> StatusReport | None:
        """A status report if ``body`` is a state body, else None."""
        if not isinstance(body, Mapping) or body.get("status") not in self._wire:
            return None
        raw = str(body["status"])
        error = body.get("error")
        error_text = message_of({"error": error}) if error is not None else None
        eta = body.get("estimated_remaining_seconds")
        position = body.get("queue_position")
        return StatusReport(
            request_id=str(body.get("request_id", "")),
            status=self._normalise(raw, body),
            raw_status=raw,
            http_status=http_status,
            queue_position=position if isinstance(position, int) else None,
            eta_seconds=float(eta) if isinstance(eta, int | float) else None,
            error=error_text,
            error_type=body.get("error_type"),
            body=body,
        )

    def _normalise(self, raw: str, body: Mapping[str, Any]) -> JobStatus:
        candidates = self._wire[raw]
        if len(candidates) == 1:
            return candidates[0]
        if body.get("error") is None:  # SeaArt: COMPLETED means terminal; success has no error
            return JobStatus.SUCCEEDED
        if body.get("error_type") == "CANCELED" and JobStatus.CANCELLED in candidates:
            return JobStatus.CANCELLED
        return JobStatus.FAILED

    def result(self, handle: JobHandle, body: Mapping[str, Any]) -> Result:
        raise NotImplementedError

    def sync_call(self, origin: str, model: str, body: Mapping[str, Any]) -> Call | None:
        """The blocking generation, or None when the provider has none."""
        return None

    def sync_result(self, origin: str, model: str, body: Any) -> Result | None:
        """A blocking generation's JSON answer parsed, or None when it answers raw bytes."""
        return None


def _field_and_spelling(
    fields: list[str], value: Any, properties: Mapping[str, Any]
) -> tuple[str, Any]:
    """The first field whose enum accepts the value, or another spelling of it (then that
    spelling is sent: the contracts' tiers and formats, ``schemas.media``); the first field,
    with the value as given, when none does."""
    for name in fields:
        allowed = properties.get(name, {}).get("enum")
        if allowed is None or value in allowed:
            return name, value
        spelling = media.spelling_in(value, allowed)
        if spelling is not None:
            return name, spelling
    return fields[0], value


def _images(items: Any) -> tuple[Image, ...]:
    images = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping) and isinstance(item.get("url"), str):
            images.append(
                Image(
                    url=item["url"],
                    width=item.get("width") if isinstance(item.get("width"), int) else None,
                    height=item.get("height") if isinstance(item.get("height"), int) else None,
                    content_type=item.get("content_type"),
                )
            )
    return tuple(images)


class Segmind(Adapter, contract="segmind"):
    def sync_call(self, origin: str, model: str, body: Mapping[str, Any]) -> Call:
        return Call(
            "sync_generate", "POST", self.url(origin, "sync_generate", model=model), dict(body)
        )

    def result(self, handle: JobHandle, body: Mapping[str, Any]) -> Result:
        images = _images(body.get("images"))
        if not images and isinstance(body.get("output"), str):
            images = (Image(url=body["output"]),)
        return Result(handle, images, Metrics.from_mapping(body.get("metrics")), body)


class SeaArt(Adapter, contract="seaart"):
    def result(self, handle: JobHandle, body: Mapping[str, Any]) -> Result:
        return Result(handle, _images(body.get("outputs")), Metrics(), body)


class Pixazo(Adapter, contract="pixazo"):
    def submit_call(self, origin: str, model: str, body: Mapping[str, Any]) -> Call:
        return Call("submit", "POST", self.url(origin, "submit"), dict(body))

    def status_call(self, handle: JobHandle) -> Call:
        """Pixazo has one route for both: a POST with the id in the body."""
        url = self.url(handle.base_url, "result")
        return Call("result", "POST", url, {"request_id": handle.request_id})

    def result_call(self, handle: JobHandle) -> Call:
        return self.status_call(handle)

    def result(self, handle: JobHandle, body: Mapping[str, Any]) -> Result:
        found = body.get("metadata")
        metadata: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        seconds = metadata.get("processing_time_seconds")
        metrics = (
            Metrics(inference_time=float(seconds))
            if isinstance(seconds, int | float)
            else Metrics()
        )
        return Result(handle, _images(body.get("images")), metrics, body)


class Fal(Adapter, contract="fal"):
    def result(self, handle: JobHandle, body: Mapping[str, Any]) -> Result:
        return Result(handle, _images(body.get("images")), Metrics(), body)


class Gemini(Adapter, contract="gemini"):
    """Google's Gemini API: one blocking ``generateContent`` call, the image inline (base64)."""

    def body(self, model: str, params: Mapping[str, Any]) -> dict[str, Any]:
        flat = super().body(model, params)
        parts: list[dict[str, Any]] = [{"text": str(flat.pop("prompt", ""))}]
        for url in flat.pop("image_urls", None) or []:
            parts.append({"fileData": {"fileUri": url}})
        image = {
            wire: flat.pop(name)
            for name, wire in (("aspect_ratio", "aspectRatio"), ("image_size", "imageSize"))
            if name in flat
        }
        modalities = flat.pop("response_modalities", None) or ["TEXT", "IMAGE"]
        config: dict[str, Any] = {"responseModalities": modalities, **flat}
        if image:
            config["imageConfig"] = image
        return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}

    def sync_call(self, origin: str, model: str, body: Mapping[str, Any]) -> Call:
        url = self.url(origin, "sync_generate", model=model)
        return Call("sync_generate", "POST", url, dict(body))

    def sync_result(self, origin: str, model: str, body: Any) -> Result:
        body = body if isinstance(body, Mapping) else {}  # a drifted answer: no image
        candidate = _first(body.get("candidates"))
        handle = JobHandle(self.name, model, str(body.get("responseId", "")), origin)
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, Mapping) else None
        images = tuple(
            _inline(origin, part["inlineData"])
            for part in (parts if isinstance(parts, list) else ())
            if isinstance(part, Mapping) and isinstance(part.get("inlineData"), Mapping)
        )
        if not images:
            reason = str(candidate.get("finishReason", "NO_IMAGE"))
            raise JobFailed(
                f"no image (finishReason {reason})",
                provider=self.name,
                handle=handle,
                error_type=reason,
                status=200,
                body=dict(body),
            )
        return Result(handle, images, Metrics(), body)


def _first(items: Any) -> Mapping[str, Any]:
    """The first of a list of objects (an empty one when it is none)."""
    first = items[0] if isinstance(items, list) and items else None
    return first if isinstance(first, Mapping) else {}


def _inline(origin: str, blob: Mapping[str, Any]) -> Image:
    data = base64.b64decode(str(blob.get("data", "")))
    width, height = _size(data)
    mime = str(blob.get("mimeType", "image/png"))
    return Image(f"{origin}#inlineData", width, height, mime, data)


def _size(data: bytes) -> tuple[int | None, int | None]:
    try:
        from PIL import Image as PILImage

        with PILImage.open(io.BytesIO(data)) as picture:
            width, height = picture.size
            return int(width), int(height)
    except Exception:  # not an image the client can read: sizes unknown
        return None, None


def _adapters() -> dict[str, type[Adapter]]:
    """The adapters by provider, in the order of the contract folders; each folder needs one."""
    missing = [name for name in schemas.PROVIDERS if name not in _REGISTERED]
    if missing:
        raise ImportError(
            f"no client adapter for the contract folder(s) {', '.join(missing)}: write "
            "class Name(Adapter, contract='name') in nanobanana/providers.py (or subclass the "
            "adapter of a provider whose answers it parses alike)"
        )
    return {name: _REGISTERED[name] for name in schemas.PROVIDERS}


ADAPTERS: dict[str, type[Adapter]] = _adapters()


def adapter(provider: str) -> Adapter:
    if provider not in ADAPTERS:
        raise ConfigurationError(f"unknown provider {provider!r}; one of {', '.join(ADAPTERS)}")
    return ADAPTERS[provider]()
