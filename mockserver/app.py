"""``create_app(config)``: the only way to build a mock server.

One application serves all three providers on their real paths, the output images, and the
control plane under ``/_mock/``. Every provider route, the output images and a catch-all for
stray paths are wrapped in the pipeline (``pipeline/``: journal, faults, quotas, provider
envelopes, self-check).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from aiohttp import web

from nanobanana_mock import schemas

from .config import MockConfig
from .control.api import BASE_CONFIG, BASE_SCENARIO, apply_scenario, control_routes
from .engine import images
from .engine.clock import VirtualClock
from .engine.jobs import State
from .http import ApiError, json_response, origin
from .names import PROVIDERS as PROVIDER_NAMES
from .names import unknown
from .oneshot import OneShot
from .openapi import openapi_document
from .pipeline.call import note
from .pipeline.routing import STRAY, in_tenant
from .pipeline.self_check import ContractViolation
from .pipeline.serve import DRIFT, SOURCES, Pipeline, Source
from .providers import PROVIDER_CLASSES
from .providers.base import JOB_STATE_HEADER, Provider
from .sources.replay import Recorder, Replay
from .state import STATE, MockState
from .store.tenant import adopt, current
from .store.tenants import TENANTS, TenantError, make_tenants

__all__ = ["PROVIDERS", "STATE", "ContractViolation", "create_app"]

PROVIDERS: web.AppKey[dict[str, Provider]] = web.AppKey("providers", dict)


def create_app(
    config: MockConfig | None = None,
    *,
    clock: VirtualClock | None = None,
    scenario: dict[str, Any] | None = None,
) -> web.Application:
    """Build the mock. ``scenario`` (or ``config.scenario``, a file) is applied at start-up
    and again on every reset. Pass a clock to share one with a test."""
    config = config or MockConfig()
    if scenario is None and config.scenario:
        from .scenario import load_scenario

        scenario = load_scenario(config.scenario)
    scenario = scenario or {}
    if scenario.get("settings"):
        config = _with_settings(config, scenario["settings"])
    state = MockState.create(config, clock)
    app = web.Application(client_max_size=config.max_body_bytes)
    app[STATE] = state
    app[BASE_CONFIG] = config
    app[BASE_SCENARIO] = scenario
    providers = {cls.name: cls() for cls in PROVIDER_CLASSES}
    app[PROVIDERS] = providers
    tenants = app[TENANTS] = make_tenants(config, state, scenario)
    pipeline = Pipeline(tenants, providers, _add_sources(app, config))
    routes = pipeline.routes
    defs: list[web.RouteDef] = []
    for provider in providers.values():
        defs.extend(routes.wrap(provider, route) for route in provider.routes())
    expect = pipeline.expect  # an odd Expect answered in an envelope, on every route
    ours = {"expect_handler": expect}
    defs.append(web.get("/_mock/files/{job_id}/{name}", routes.files(_file), name="mock.file"))
    defs.append(web.get("/_mock/health", _health, name="mock.health"))
    defs.append(web.get("/_mock/openapi/{provider}.json", _openapi, name="mock.openapi"))
    defs.extend(control_routes())
    defs.append(web.get("/", routes.plain(_index), name="mock.index"))
    defs.append(web.route("*", r"/{path:[\s\S]*}", routes.stray(), name=STRAY))
    defs = [web.RouteDef(r.method, r.path, r.handler, {**r.kwargs, **ours}) for r in defs]
    # Every route again under /t/{tenant}: the router indexes routes by their path's first
    # segments, so a path without the prefix never tries these (routing.in_tenant)
    app.router.add_routes(defs)
    app.router.add_routes(map(in_tenant, defs))
    apply_scenario(state, scenario)
    app.on_startup.append(_adopt_default)
    app.on_cleanup.append(_close)
    return app


def _add_sources(app: web.Application, config: MockConfig) -> list[Source]:
    """The validating proxy and the replay, for the providers the settings name."""
    sources: list[Source] = []
    if config.proxy:
        from .sources.proxy import Proxy, Report  # the conformance checks, only when proxying

        recorder = Recorder(config.record_dir) if config.record_dir else None
        report = app[DRIFT] = Report(target="proxy")
        proxy = Proxy(config, report, recorder)
        app.on_startup.append(proxy.start)
        app.on_cleanup.append(proxy.close)
        sources.append(proxy)  # a provider both proxied and replayed goes live
        if config.record_dir:
            record_dir = config.record_dir

            async def write_drift(app: web.Application) -> None:
                report.write(record_dir)

            app.on_cleanup.append(write_drift)
    if config.replay_dir:
        providers: dict[str, Provider] = app[PROVIDERS]
        sources.append(Replay(config.replay_dir, providers))
    app[SOURCES] = sources
    return sources


def _with_settings(config: MockConfig, settings: dict[str, Any]) -> MockConfig:
    """A scenario's settings fill in what the caller left at its default: settings given
    explicitly (flags, MOCK_* variables, code) win over the file."""
    defaults = MockConfig()
    values = {k: v for k, v in settings.items() if getattr(config, k) == getattr(defaults, k)}
    return dataclasses.replace(config, **values)


def base_urls(base: str) -> dict[str, str]:
    """What each provider's client should use as its base URL against this mock: the mock's
    origin plus the provider's ``base_url_path`` (``api.json``)."""
    return {p: base + schemas.load(p, "api")["base_url_path"] for p in PROVIDER_NAMES}


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


async def _openapi(request: web.Request) -> web.Response:
    """The provider's OpenAPI 3.1 document, built from its JSON Schemas."""
    provider = request.match_info["provider"]
    if provider not in request.app[PROVIDERS]:
        return json_response(404, {"error": unknown("provider", provider, PROVIDER_NAMES)})
    return json_response(200, openapi_document(provider))


async def _health(request: web.Request) -> web.Response:
    """Alive; the tenant's clock, jobs and violations; the store's kind and tenants. A 503
    (ok false, and why) while a shared store cannot be reached: every answer but this one
    is a 503 then too, so a load balancer may as well know."""
    tenants = request.app[TENANTS]
    try:
        tenant = await tenants.of(request)
    except TenantError as refused:
        return json_response(400, {"error": str(refused)})
    await tenants.check()  # a shared store is pinged: is it up now? (this process's copy of
    # the tenant is not brought up to date: its clock and jobs are as it last saw them)
    state = tenant.state
    store = tenants.health()
    ok = "store_error" not in store
    return json_response(
        200 if ok else 503,
        {
            "ok": ok,
            "pid": os.getpid(),  # which process answered (--processes N: N of them)
            "clock": state.clock.now(),
            "jobs": len(state.store),
            "waiting": state.clock.sleepers,  # blocking calls and status streams, now
            "violations": state.violations[-50:],  # answers that broke the contract (self_check)
            "tenant": tenant.name,
            **store,
        },
    )


async def _file(request: web.Request) -> web.StreamResponse:
    """An output image, public like the providers' CDNs: no key needed."""
    state = current().state
    job_id = request.match_info["job_id"]
    job = state.store.get(job_id, state.clock.now())
    if job is None:  # image URLs are public: no key or provider narrows the job's fate
        fate = state.store.fate(job_id, state.clock.now())
        note(request, job=fate)
        raise ApiError(404, {"error": "File not found"}, headers={JOB_STATE_HEADER: fate})
    provider = request.app[PROVIDERS][job.provider]
    index_text, _, ext = request.match_info["name"].partition(".")
    index = _image_index(index_text)
    if (
        index is None
        or job.state(state.clock.now()) is not State.SUCCEEDED
        or index >= job.output.count
        or ext != images.extension(job.output.fmt)
    ):  # a job's image route answers in its provider's envelope (SeaArt's is {"detail"})
        raise provider.error(404, "File not found")
    data = await state.sim.image_bytes(job, index)
    return OneShot(
        200, data, {"Cache-Control": "public, max-age=3600"}, images.content_type(job.output.fmt)
    )


MAX_IMAGE_INDEX_DIGITS = 4  # an image's number in its URL: 0, 1, 2... (a job has a few)


def _image_index(text: str) -> int | None:
    """The image number a file name gives, exactly as the mock writes it: a short run of
    ASCII digits without a leading zero. "²", an Arabic-Indic zero, "01" or 5,000 digits name
    no image."""
    if (
        not 0 < len(text) <= MAX_IMAGE_INDEX_DIGITS
        or not text.isascii()
        or not text.isdigit()
        or (text[0] == "0" and text != "0")
    ):
        return None
    return int(text)


async def _adopt_default(app: web.Application) -> None:
    """The default tenant current where the server starts, so that its connections' requests
    inherit it (``store.tenant.use``: a request of the default tenant then sets nothing)."""
    adopt(app[TENANTS].default)


async def _close(app: web.Application) -> None:
    await app[STATE].images.close()
    await app[TENANTS].close()
