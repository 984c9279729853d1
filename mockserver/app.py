"""``create_app(config)``: the only way to build a mock server.

One application serves all three providers on their real paths. A middleware turns every
failure into the owning provider's own envelope (never a bare 500 or a traceback) and, with
``self_check`` on, validates every JSON response against the schema the contract names for it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

import schemas

from . import images
from .clock import VirtualClock
from .config import MockConfig
from .http import ApiError, json_response, origin, problems_of
from .jobs import State
from .providers import PROVIDER_CLASSES
from .providers.base import Provider
from .state import STATE, MockState

__all__ = ["PROVIDERS", "STATE", "ContractViolation", "create_app"]

log = logging.getLogger("mockserver")

PROVIDERS: web.AppKey[dict[str, Provider]] = web.AppKey("providers", dict)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ContractViolation(AssertionError):
    """The mock answered something its own contract does not allow."""


def create_app(
    config: MockConfig | None = None, *, clock: VirtualClock | None = None
) -> web.Application:
    """Build the mock. Pass a clock to share one with a test; otherwise one is made."""
    config = config or MockConfig()
    state = MockState.create(config, clock)
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[_envelope_middleware])
    app[STATE] = state
    providers = {cls.name: cls(state) for cls in PROVIDER_CLASSES}
    app[PROVIDERS] = providers
    for provider in providers.values():
        app.router.add_routes(provider.routes())
    app.router.add_get("/_mock/files/{job_id}/{name}", _file, name="mock.file")
    app.router.add_get("/_mock/health", _health, name="mock.health")
    app.router.add_get("/", _index, name="mock.index")
    app.on_cleanup.append(_close)
    return app


def base_urls(base: str) -> dict[str, str]:
    """What each provider's client should use as its base URL against this mock."""
    return {
        "segmind": f"{base}/v1",
        "seaart": f"{base}/model",
        "pixazo": base,
    }


async def _index(request: web.Request) -> web.Response:
    base = origin(request)
    return json_response(
        200,
        {
            "service": "nanobanana-mock",
            "base_urls": base_urls(base),
            "files": f"{base}/_mock/files/",
        },
    )


async def _health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return json_response(200, {"ok": True, "clock": state.clock.now(), "jobs": len(state.store)})


async def _file(request: web.Request) -> web.StreamResponse:
    """An output image, public like the providers' CDNs: no key needed."""
    state = request.app[STATE]
    job = state.store.get(request.match_info["job_id"], state.clock.now())
    index_text, _, ext = request.match_info["name"].partition(".")
    if (
        job is None
        or job.state(state.clock.now()) is not State.SUCCEEDED
        or not index_text.isdigit()
        or int(index_text) >= job.output.count
        or ext != images.extension(job.output.fmt)
    ):
        raise ApiError(404, {"error": "File not found"})
    provider = request.app[PROVIDERS][job.provider]
    data = await provider.image_bytes(job, int(index_text))
    return web.Response(
        body=data,
        content_type=images.content_type(job.output.fmt),
        headers={"Cache-Control": "public, max-age=3600"},
    )


def _owner(request: web.Request) -> Provider | None:
    """The provider whose envelope this request gets: by route, else by path prefix."""
    providers = request.app[PROVIDERS]
    route = request.match_info.route
    name = getattr(route, "name", None) or ""
    if "." in name and name.split(".")[0] in providers:
        return providers[name.split(".")[0]]
    for provider in providers.values():
        if request.path.startswith(provider.prefixes):
            return provider
    return None


@web.middleware
async def _envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    provider = _owner(request)
    try:
        response = await handler(request)
    except ApiError as err:
        response = err.response()
    except web.HTTPException as exc:
        response = _from_http_exception(provider, request, exc)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        message = "internal mock error; see the server log"
        response = (
            provider.error(500, message) if provider else ApiError(500, {"error": message})
        ).response()
    if request.app[STATE].config.self_check:
        _self_check(request, provider, response)
    return response


def _from_http_exception(
    provider: Provider | None, request: web.Request, exc: web.HTTPException
) -> web.StreamResponse:
    if provider is not None and exc.status == 404:
        return provider.unknown_route(request).response()
    if provider is not None and exc.status == 405:
        return provider.bad_method(request).response()
    if provider is not None and exc.status == 413:
        return provider.error(413, "request body too large").response()
    if provider is not None and exc.status >= 400:
        return provider.error(exc.status, exc.reason).response()
    if exc.status >= 400:
        return json_response(exc.status, {"error": exc.reason})
    raise exc


def _self_check(
    request: web.Request, provider: Provider | None, response: web.StreamResponse
) -> None:
    """Validate a JSON response against the schema its operation names for its status."""
    if provider is None or not isinstance(response, web.Response):
        return
    if response.content_type != "application/json" or response.text is None:
        return
    route_name = getattr(request.match_info.route, "name", None) or ""
    operation = route_name.partition(".")[2]
    contract = provider.contract
    if operation in contract.api["operations"]:
        schema = contract.response_schema(operation, response.status)
    else:  # stray paths and methods answer with the provider's error envelope
        schema = "error"
    if schema is None:
        request.app[STATE].violations.append(f"{provider.name}.{operation} {response.status}")
        raise ContractViolation(
            f"{provider.name}.{operation} answered {response.status}, "
            "which its api.json does not list"
        )
    body = json.loads(response.text)
    problems = problems_of(schemas.validator(provider.name, schema), body)
    if problems:
        request.app[STATE].violations.append(f"{provider.name}.{operation} {response.status}")
        raise ContractViolation(
            f"{provider.name}.{operation} {response.status} breaks {schema}.json: "
            + "; ".join(map(str, problems))
            + f"\nbody: {response.text[:500]}"
        )


async def _close(app: web.Application) -> None:
    await app[STATE].images.close()
