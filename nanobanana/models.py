"""Typed values the client returns: frozen dataclasses, with the provider's raw body kept."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from nanobanana_mock.schemas.lifecycle import State

__all__ = ["Image", "JobHandle", "JobStatus", "Metrics", "Result", "StatusReport"]


JobStatus = State
"""One status vocabulary for the three providers: the provider-neutral states of
``lifecycle.schema.json``, the mock's own (their wire string stays in
:attr:`StatusReport.raw_status`)."""


@dataclass(frozen=True, slots=True)
class JobHandle:
    """Everything needed to find a job again, from this process or another: save it, and a
    client-side timeout never loses a paid result."""

    provider: str
    model: str
    request_id: str
    base_url: str
    status_url: str | None = None
    response_url: str | None = None
    cancel_url: str | None = None
    submitted_at: float | None = None  # wall-clock epoch seconds, for display

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def rebased(self, origin: str, move_url: Callable[[str], str] | None = None) -> JobHandle:
        """The same job reached through another origin (e.g. a proxy, or the mock): every URL
        that started with the old base URL is moved to the new one (or by ``move_url``, which
        knows the provider's layouts: ``Adapter.rebased``)."""
        if origin == self.base_url:
            return self

        def move(url: str | None) -> str | None:
            if url is not None and move_url is not None:
                return move_url(url)
            if url is not None and url.startswith(self.base_url):
                return origin + url[len(self.base_url) :]
            return url

        return replace(
            self,
            base_url=origin,
            status_url=move(self.status_url),
            response_url=move(self.response_url),
            cancel_url=move(self.cancel_url),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobHandle:
        if not isinstance(data, Mapping):
            raise ValueError("a job handle is a JSON object")
        fields = {f for f in cls.__dataclass_fields__}
        missing = {"provider", "model", "request_id", "base_url"} - set(data)
        if missing:
            raise ValueError(f"a job handle needs {', '.join(sorted(missing))}")
        return cls(**{k: v for k, v in data.items() if k in fields})

    def save(self, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        target.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> JobHandle:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


@dataclass(frozen=True, slots=True)
class StatusReport:
    """One status read: the normalised status, the provider's own, and what else it said."""

    request_id: str
    status: JobStatus
    raw_status: str
    http_status: int
    queue_position: int | None = None
    eta_seconds: float | None = None
    error: str | None = None
    error_type: str | None = None
    body: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class Image:
    """One output image; ``data`` is filled once downloaded."""

    url: str
    width: int | None = None
    height: int | None = None
    content_type: str | None = None
    data: bytes | None = field(default=None, repr=False)

    def with_data(self, data: bytes, content_type: str | None = None) -> Image:
        return replace(self, data=data, content_type=content_type or self.content_type)

    def save(self, path: str | os.PathLike[str]) -> Path:
        if self.data is None:
            raise ValueError("download the image first (Client.download)")
        target = Path(path)
        target.write_bytes(self.data)
        return target


@dataclass(frozen=True, slots=True)
class Metrics:
    """What the provider reported about the run, where it did."""

    inference_time: float | None = None
    queue_time: float | None = None
    total_time: float | None = None
    cost: float | None = None
    remaining_credits: float | None = None

    @classmethod
    def from_mapping(cls, data: Any) -> Metrics:
        if not isinstance(data, Mapping):
            return cls()
        return cls(
            **{
                name: float(data[name])
                for name in (
                    "inference_time",
                    "queue_time",
                    "total_time",
                    "cost",
                    "remaining_credits",
                )
                if isinstance(data.get(name), int | float) and not isinstance(data.get(name), bool)
            }
        )


@dataclass(frozen=True, slots=True)
class Result:
    """A finished job's output."""

    handle: JobHandle
    images: tuple[Image, ...]
    metrics: Metrics = field(default_factory=Metrics)
    body: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def image(self) -> Image:
        return self.images[0]
