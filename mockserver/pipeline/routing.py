"""What a request is for, and the routes wrapped so that the pipeline serves them.

Each route's handler is registered already wrapped (:meth:`Routes.guard`, a partial of the
pipeline's ``serve``), with a *locate* function that says what a request on it is for: the
provider, the operation, the error codes its contract declares, the model and the job id.
A catch-all route answers the paths and methods no route takes, in the envelope of the
provider whose prefix the path is under. There is no aiohttp middleware: a middleware costs
every request two extra coroutine layers.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from aiohttp import web

from ..http import local_path
from ..names import IMAGE, IMAGE_ERRORS
from ..providers.base import Provider
from ..store.tenant import current

if TYPE_CHECKING:
    from ..faults.rules import RequestFacts

__all__ = [
    "CATCH_ALLS",
    "CONTROL_STRAY",
    "NOWHERE",
    "STRAY",
    "Handler",
    "Locate",
    "Routes",
    "Target",
    "allowed_methods",
    "in_tenant",
    "not_routed",
    "route_name",
]

STRAY = "mock.stray"  # the catch-all route's name
CONTROL_STRAY = "control.stray"  # the control plane's catch-all route
IN_TENANT = "t:"  # the name of a route under /t/{tenant}/ is its own name after this
TENANT_PREFIX = "/t/{tenant:[^/]*}"  # any segment: a bad name is refused in the envelope
CATCH_ALLS = frozenset({STRAY, CONTROL_STRAY, IN_TENANT + STRAY, IN_TENANT + CONTROL_STRAY})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_ID = 200  # characters of a job id kept in the journal


class Source(Protocol):
    """Answers a provider's requests in place of its simulation (the proxy, a replay)."""

    def serves(self, provider: str) -> bool: ...

    def describe(self, provider: str) -> str:
        """How it answers ``provider``, as the start-up banner says it."""

    def owner(self, path: str) -> str | None:
        """The provider behind a URL this source handed out (e.g. an output image)."""

    async def answer(
        self, request: web.Request, provider: Provider, facts: RequestFacts
    ) -> web.StreamResponse: ...

    def reset(self) -> None: ...


class Target:
    """What a request is for: its provider, operation and the error codes its contract
    declares. Fixed per route; for images and stray paths, one of a few made at start-up."""

    __slots__ = ("declared", "operation", "provider")

    def __init__(
        self, provider: Provider | None, operation: str | None, declared: frozenset[int]
    ) -> None:
        self.provider = provider
        self.operation = operation
        self.declared = declared


NOWHERE = Target(None, None, frozenset())

Locate = Callable[[web.Request], tuple[Target, str | None, str | None]]  # target, model, id
Serve = Callable[[Handler, Locate, web.Request], Awaitable[web.StreamResponse]]
Expect = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


class Routes:
    """Wraps an app's routes in ``serve``, each with the locate function of its kind;
    ``expect`` answers an ``Expect`` header on each provider route."""

    def __init__(
        self,
        serve: Serve,
        expect: Expect,
        providers: dict[str, Provider],
        sources: Sequence[Source],
    ) -> None:
        self._serve = serve
        self._expect = expect
        self._sources = sources
        self._images = {name: Target(p, IMAGE, IMAGE_ERRORS) for name, p in providers.items()}
        # the longest prefix first: Gemini's /v1/models/ is under Segmind's /v1/
        strays = [
            (pre, Target(p, None, frozenset())) for p in providers.values() for pre in p.prefixes
        ]
        self._strays = sorted(strays, key=lambda stray: -len(stray[0]))
        self._locates: dict[Handler, Locate] = {}  # each guarded handler's, for Expect
        self.image_locate: Locate | None = None

    def wrap(self, provider: Provider, route: web.RouteDef) -> web.RouteDef:
        """A provider route with its handler behind the pipeline."""
        operation = str(route.kwargs["name"]).partition(".")[2]
        target = Target(provider, operation, provider.declared_errors(operation))
        spec = provider.contract.api["operations"].get(operation, {})
        model_param = next((p for p in ("slug", "endpoint") if f"{{{p}}}" in route.path), None)
        default_model = spec.get("model")
        id_param = "request_id" if "{request_id" in route.path else None  # or {request_id:re}

        def fixed(request: web.Request) -> tuple[Target, str | None, str | None]:
            match = request.match_info
            model = (match[model_param] if model_param else None) or default_model
            return target, model, match[id_param][:MAX_ID] if id_param else None

        handler = self.guard(route.handler, fixed)
        kwargs = {**route.kwargs, "expect_handler": self._expect}
        return web.RouteDef(route.method, route.path, handler, kwargs)

    def files(self, handler: Handler) -> Handler:
        """The output-image route: its provider is the job's (none for an unknown job)."""

        def image(request: web.Request) -> tuple[Target, str | None, str | None]:
            job_id = request.match_info["job_id"]
            state = current().state
            job = state.store.get(job_id, state.clock.now())
            if job is None:
                return self._followed(request) or NOWHERE, None, job_id[:MAX_ID]
            return self._images[job.provider], job.model, job_id[:MAX_ID]

        self.image_locate = image  # the one locate that reads the tenant's state
        return self.guard(handler, image)

    def plain(self, handler: Handler) -> Handler:
        """A route of no provider outside the control plane (the index): journaled only."""
        return self.guard(handler, _nowhere)

    def stray(self) -> Handler:
        """The catch-all route: a path or method no route takes, answered in the envelope of
        the provider whose prefix it is under (or whose source handed the URL out)."""

        def stray(request: web.Request) -> tuple[Target, str | None, str | None]:
            path = local_path(request)
            for prefix, target in self._strays:
                if path.startswith(prefix):
                    return target, None, None
            return self._followed(request) or NOWHERE, None, None

        return self.guard(not_routed(_not_found), stray)  # /_mock/ has a catch-all of its own

    def guard(self, handler: Handler, locate: Locate) -> Handler:
        """``handler`` behind the pipeline; ``locate`` says what a request is for. (A partial
        of a coroutine method is itself a coroutine function, with one frame fewer than a
        closure that awaits.)"""
        guarded = functools.partial(self._serve, handler, locate)
        self._locates[guarded] = locate
        return guarded

    def locate_of(self, handler: Any) -> Locate | None:
        """The locate function of a guarded handler (None for the control plane's routes)."""
        return self._locates.get(handler)

    def _followed(self, request: web.Request) -> Target | None:
        """An output image behind a URL a source handed out (the proxy rewrites them)."""
        path = local_path(request)  # sources keep paths as the provider sees them
        for source in self._sources:
            owner = source.owner(path)
            if owner is not None:
                return self._images[owner]
        return None


def in_tenant(route: web.RouteDef) -> web.RouteDef:
    """``route`` under the ``/t/{tenant}`` prefix, named ``t:<its name>``."""
    name = route.kwargs.get("name")
    kwargs = {**route.kwargs, "name": IN_TENANT + name} if name else route.kwargs
    return web.RouteDef(route.method, TENANT_PREFIX + route.path, route.handler, kwargs)


def route_name(request: web.Request) -> str:
    """The name of the route a request took, the same with or without a tenant prefix."""
    return (request.match_info.route.name or "").removeprefix(IN_TENANT)


def _nowhere(request: web.Request) -> tuple[Target, str | None, str | None]:
    return NOWHERE, None, None


def _not_found(request: web.Request) -> Exception:
    return web.HTTPNotFound()


async def allowed_methods(request: web.Request) -> set[str]:
    """The methods the routes other than the catch-alls take on the request's path."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.name not in CATCH_ALLS:
            _, methods = await resource.resolve(request)
            allowed |= methods
    return allowed


def not_routed(not_found: Callable[[web.Request], Exception]) -> Handler:
    """A catch-all's handler: what aiohttp's router answers for a request no route takes,
    405 naming the methods the path allows, else ``not_found(request)`` raised (the
    pipeline, or the control plane, turns either into its envelope)."""

    async def refuse(request: web.Request) -> NoReturn:
        allowed = await allowed_methods(request)
        if allowed:
            raise web.HTTPMethodNotAllowed(request.method, allowed)
        raise not_found(request)

    return refuse
