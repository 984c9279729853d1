"""The contracts as the mock reads them: each provider's api.json and lifecycle.json.

Nothing here restates a schema. Defaults, enums and HTTP codes all come from the files under
``schemas/``; this module only gives them types and answers the mock's questions (which HTTP
code does this state get on this route, what will this request produce, what does it cost).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import orjson

from nanobanana_mock import schemas

from .engine import images
from .engine.jobs import Output, State

__all__ = ["Contract", "Model", "Plan", "contract"]


@dataclass(frozen=True, slots=True)
class Plan:
    """What a request will produce, decided from the body, the schema defaults and the model."""

    aspect_ratio: str
    resolution: str
    output: Output
    price: float


@dataclass(frozen=True, slots=True)
class Model:
    """One model of one provider, as api.json describes it."""

    provider: str
    name: str
    request_schema: str
    typical_seconds: float
    image_family: str
    fields: Mapping[str, tuple[str, ...]]
    fallback: Mapping[str, Any]
    price_usd: Mapping[str, float]
    plan_fields: tuple[str, ...] = field(init=False)  # every field in ``fields``, in order

    def __post_init__(self) -> None:
        names = tuple(name for names in self.fields.values() for name in names)
        object.__setattr__(self, "plan_fields", names)  # frozen: set once, here

    def plan(self, body: Mapping[str, Any]) -> Plan:
        """What the request produces. Only the fields that set size, format and count
        matter, so plans are cached by their values (validated: a handful of enums)."""
        key = (self.provider, self.name, *map(body.get, self.plan_fields))
        try:
            cached = _PLANS.get(key)
        except TypeError:  # an unhashable value: plan it without the cache
            return self._plan(body)
        if cached is None:
            cached = self._plan(body)
            if len(_PLANS) < 4096:
                _PLANS[key] = cached
        return cached

    def _plan(self, body: Mapping[str, Any]) -> Plan:
        aspect = str(self._pick("aspect_ratio", body))
        resolution = str(self._pick("resolution", body))
        fmt = str(self._pick("output_format", body)).lower()
        count = int(self._pick("num_images", body))
        width, height = images.pixel_size(self.image_family, aspect, resolution)
        return Plan(aspect, resolution, Output(width, height, fmt, count), self.price(resolution))

    def price(self, resolution: str) -> float:
        table = self.price_usd
        if resolution in table:
            return table[resolution]
        tier = images.normalise_tier(resolution)
        if tier in table:
            return table[tier]
        return max(table.values())

    def image_seed(self, seed: int, body: Mapping[str, Any]) -> int:
        """A seed for this request's images: same mock seed and body, same pictures."""
        try:
            canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # a lone surrogate, which orjson refuses
            text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            canonical = text.encode("utf-8", "surrogatepass")
        digest = hashlib.blake2b(
            f"{seed}|{self.provider}|{self.name}|".encode() + canonical, digest_size=8
        )
        return int.from_bytes(digest.digest(), "big")

    def _pick(self, kind: str, body: Mapping[str, Any]) -> Any:
        """The request's value for ``kind``: the first field present, else the first schema
        default among the fields, else the model's documented fallback."""
        names = self.fields.get(kind, ())
        for name in names:
            if body.get(name) is not None:
                return body[name]
        properties = schemas.load(self.provider, self.request_schema).get("properties", {})
        for name in names:
            if "default" in properties.get(name, {}):
                return properties[name]["default"]
        return self.fallback[kind]


_PLANS: dict[tuple[Any, ...], Plan] = {}  # bounded: plans of validated bodies


@dataclass(frozen=True, slots=True)
class Contract:
    """A provider's operations, models and lifecycle."""

    provider: str
    api: Mapping[str, Any]
    lifecycle: Mapping[str, Any]
    models: Mapping[str, Model]

    def http_status(self, route: str, state: State | str) -> int:
        return int(self.lifecycle["http_status"][route][str(state)])

    def wire(self, state: State) -> str:
        return str(self.lifecycle["states"][str(state)]["wire"])

    def response_schema(self, operation: str, status: int) -> str | None:
        spec = self.api["operations"][operation]["responses"].get(str(status), {})
        schema = spec.get("schema")
        return None if schema is None else str(schema)

    @property
    def retention_seconds(self) -> float:
        return float(self.lifecycle["retention"]["seconds"])

    @property
    def auth(self) -> Mapping[str, Any]:
        auth: Mapping[str, Any] = self.api["auth"]
        return auth


@cache
def contract(provider: str) -> Contract:
    """The contract of one provider, read once."""
    api = schemas.load(provider, "api")
    models = {
        name: Model(
            provider=provider,
            name=name,
            request_schema=info["request"],
            typical_seconds=float(info["typical_seconds"]),
            image_family=info["image_family"],
            fields={kind: tuple(names) for kind, names in info["fields"].items()},
            fallback=dict(info["fallback"]),
            price_usd={key: float(value) for key, value in info["price_usd"].items()},
        )
        for name, info in api["models"].items()
    }
    return Contract(provider, api, schemas.load(provider, "lifecycle"), models)
