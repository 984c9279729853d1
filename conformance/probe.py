"""One check's view of one provider model on the target: it sends raw requests, checks every
answer against the contracts, records every finding in the run's report, and fails the check
with :class:`~nanobanana_mock.schemas.checks.ContractViolation` listing the breaking ones.

Paths, methods, auth headers and the request body of each operation come from ``api.json``
(through the client's adapter); nothing here restates a contract.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from PIL import Image, UnidentifiedImageError

from nanobanana_mock import schemas
from nanobanana_mock.client.models import JobHandle
from nanobanana_mock.client.providers import adapter
from nanobanana_mock.schemas.checks import (
    BREAKING,
    ContractViolation,
    Finding,
    image_findings,
    response_findings,
    route_status_findings,
)
from nanobanana_mock.schemas.lifecycle import EXPIRED  # the lifecycle's name for a job that is gone
from nanobanana_mock.schemas.report import Report

from .cost import Budget, Plan, SpendingRefused
from .exchange import Answer, Http
from .facts import unknown_request_id
from .target import Target

__all__ = ["DEFAULT_KEY", "URL_FIELDS", "Probe"]

UNAUTHORIZED = 401
TOO_MANY_REQUESTS = 429
SERVER_ERROR = 500
DEFAULT_KEY = object()  # send the target's key for the provider
# The URLs a submit answer hands out, and the operation each one is.
URL_FIELDS = {
    "status_url": "status",
    "response_url": "result",
    "poll_url": "poll",
    "cancel_url": "cancel",
}


class Probe:
    """A check's probe of one provider model: requests, checks, findings and verdict."""

    def __init__(
        self,
        provider: str,
        model: str,
        *,
        target: Target,
        http: Http,
        report: Report,
        budget: Budget,
        check: str,
    ) -> None:
        self.provider = provider
        self.model = model
        self.target = target
        self.http = http
        self.report = report
        self.budget = budget
        self.check_name = check
        self.adapter = adapter(provider)
        self.api = schemas.load(provider, "api")
        self.lifecycle = schemas.load(provider, "lifecycle")
        self.findings: list[Finding] = []

    # -- the contract's facts ---------------------------------------------------------------
    @property
    def operations(self) -> Mapping[str, Any]:
        found: Mapping[str, Any] = self.api["operations"]
        return found

    @property
    def poll_routes(self) -> list[str]:
        """The routes that report a job's state, the main one (``status``, else ``result``)
        last. Cancel reports a state too, but changes the job: it has its own check."""
        routes = [
            op
            for op, spec in self.operations.items()
            if spec.get("lifecycle_route") and op != "cancel"
        ]
        return sorted(routes, key=lambda op: op == self.main_route)

    @property
    def main_route(self) -> str:
        return "status" if "status" in self.operations else "result"

    def wire_status(self, answer: Answer) -> Any:
        """The wire status a lifecycle route's body reports, where lifecycle.json's
        ``status_pointer`` says (default ``/status``); None when absent."""
        node: Any = answer.body
        for part in self.status_pointer.split("/")[1:]:
            node = node.get(part) if isinstance(node, Mapping) else None
        return node

    @property
    def status_pointer(self) -> str:
        return str(self.lifecycle.get("status_pointer", "/status"))

    def refusal(self, key: Any) -> Mapping[str, Any]:
        """How a request without a key (``key`` None), or with a wrong one, is refused:
        api.json's ``auth.errors`` (absent: 401 for both)."""
        errors = self.api["auth"].get("errors", {})
        found: Mapping[str, Any] = errors.get("missing" if key is None else "invalid", {})
        return found or {"http_status": UNAUTHORIZED}

    def states(self, wire: Any) -> list[str]:
        """The lifecycle states a wire status stands for (empty: not a wire status)."""
        return [s for s, info in self.lifecycle["states"].items() if info["wire"] == wire]

    def terminal(self, wire: Any) -> bool:
        states = self.states(wire)
        return bool(states) and all(self.lifecycle["states"][s]["terminal"] for s in states)

    @property
    def unknown_id(self) -> str:
        return unknown_request_id(self.provider)

    def route_codes(self, operation: str) -> Mapping[str, int]:
        """State -> HTTP code on the operation's lifecycle route (lifecycle.json)."""
        route = self.operations[operation].get("lifecycle_route")
        codes: Mapping[str, int] = self.lifecycle["http_status"].get(route, {})
        return codes

    def expired_code(self, operation: str) -> int:
        """The code of a job that is gone (expired, or never was)."""
        return int(self.route_codes(operation)[EXPIRED])

    def state_codes(self, operation: str, *, terminal: bool) -> set[int]:
        """The codes of every terminal (or every live) state on the operation's route."""
        states = self.lifecycle["states"]
        return {
            code
            for state, code in self.route_codes(operation).items()
            if state in states and states[state]["terminal"] == terminal
        }

    def label(self, operation: str) -> str:
        spec = self.operations[operation]
        return f"{spec['method']} {spec['path']} [{self.model}, {self.check_name}]"

    # -- requests ---------------------------------------------------------------------------
    def headers(self, key: Any = DEFAULT_KEY) -> dict[str, str]:
        if key is None:
            return {"Content-Type": "application/json"}
        return self.adapter.headers(self.target.key(self.provider) if key is DEFAULT_KEY else key)

    def url(self, operation: str, request_id: str = "") -> str:
        origin = self.target.origin(self.provider)
        return self.adapter.url(origin, operation, model=self.model, request_id=request_id)

    def send(
        self,
        operation: str,
        *,
        request_id: str = "",
        body: Any = None,
        url: str | None = None,
        key: Any = DEFAULT_KEY,
    ) -> Answer:
        """One request of ``operation``; a job route that takes a body (Pixazo's result)
        gets ``{"request_id": ...}``, the shape of its request schema."""
        spec = self.operations[operation]
        if body is None and spec.get("request") not in (None, "model"):
            body = {"request_id": request_id}
        return self.http.call(
            spec["method"],
            url or self.url(operation, request_id),
            headers=self.headers(key),
            json_body=body,
        )

    def spend(self, plan: Plan) -> None:
        """Book a paid request's price before sending it; over the cap, skip the check."""
        try:
            self.budget.spend(self.provider, plan.price)
        except SpendingRefused as exc:
            pytest.skip(str(exc))

    # -- checks -----------------------------------------------------------------------------
    def record(self, findings: Iterable[Finding]) -> list[Finding]:
        found = list(findings)
        self.report.checked(self.provider)
        self.report.add(found)
        self.findings += found
        return found

    def check(
        self, operation: str, answer: Answer, *, expected: Iterable[int] | None = None
    ) -> list[Finding]:
        """The answer's code (declared, or one of ``expected``) and its body's schema."""
        return self.record(
            response_findings(
                self.provider,
                operation,
                answer.status,
                answer.body,
                request=self.label(operation),
                expected=expected,
            )
        )

    @staticmethod
    def transient(answer: Answer) -> bool:
        """A rate limit or a server error: declared, and no news about the job's state."""
        return answer.status == TOO_MANY_REQUESTS or answer.status >= SERVER_ERROR

    def check_state_code(self, operation: str, answer: Answer, wire: Any) -> list[Finding]:
        """The HTTP code the lifecycle declares on this route for the job's state: the state
        the body reports, else ``wire`` (the main route's, for a body without a status)."""
        if self.transient(answer):
            return []
        own = self.wire_status(answer)
        wire = own if self.states(own) else wire
        return self.record(
            route_status_findings(
                self.provider,
                operation,
                answer.status,
                wire if self.states(wire) else None,
                request=self.label(operation),
            )
        )

    def expect(self, operation: str, pointer: str, expected: Any, observed: Any) -> None:
        """A value the contract documents for this answer (e.g. a cancel's status)."""
        if expected != observed:
            self.record(
                [
                    Finding(
                        self.provider,
                        operation,
                        self.label(operation),
                        pointer,
                        repr(expected),
                        repr(observed),
                        BREAKING,
                        "lifecycle",
                    )
                ]
            )

    def check_images(self, result: Answer, submit: Answer, plan: Plan) -> None:
        """Every output downloads with its advertised type, at the size the request implies."""
        handle = self.adapter.handle(self.target.origin(self.provider), self.model, submit.json)
        images = self.adapter.result(handle, result.json).images
        if len(images) != plan.count:
            self.expect("result", "", f"{plan.count} image(s)", f"{len(images)} image(s)")
        for image in images:
            download = self.http.call("GET", image.url)
            request = f"GET {image.url} [{self.model}, {self.check_name}]"
            if download.status != 200:
                self.record([_image_finding(self.provider, request, download.status)])
            elif plan.size is not None:
                self.record(
                    image_findings(
                        self.provider,
                        request=request,
                        advertised={
                            "content_type": image.content_type,
                            "width": image.width,
                            "height": image.height,
                        },
                        content_type=download.content_type,
                        size=_pixel_size(download),
                        expected_size=plan.size,
                    )
                )

    def handle(self, submit: Answer) -> JobHandle | None:
        """The job a submit created, or None when the answer names none."""
        if not isinstance(submit.json.get("request_id"), str):
            return None
        return self.adapter.handle(self.target.origin(self.provider), self.model, submit.json)

    # -- verdict ----------------------------------------------------------------------------
    @property
    def breaking(self) -> list[Finding]:
        return list(dict.fromkeys(f for f in self.findings if f.severity == BREAKING))

    def verdict(self) -> None:
        """Fail the check with the breaking findings, if any (additive ones only report)."""
        if self.breaking:
            raise ContractViolation(self.breaking)

    def never_ended(self, operation: str, polls: int, seconds: float, last: Answer) -> None:
        """The job reached no terminal state within the check's bounded wait: a breaking
        lifecycle finding, and the check stops."""
        states = self.lifecycle["states"].values()
        terminal = " or ".join(sorted({s["wire"] for s in states if s["terminal"]}))
        status = self.wire_status(last)
        observed = (
            f"never reached a terminal state after {polls} polls / {seconds:.0f} s; "
            f"last status {status!r} (HTTP {last.status})"
        )
        self.record(
            [
                Finding(
                    self.provider,
                    operation,
                    self.label(operation),
                    self.status_pointer,
                    f"a terminal status ({terminal})",
                    observed,
                    BREAKING,
                    "lifecycle",
                )
            ]
        )
        self.stop(observed)

    def stop(self, reason: str) -> None:
        """The check cannot go on: fail with the breaking findings, else as a tool error."""
        self.verdict()
        pytest.fail(f"{self.provider} {self.model}: {reason}", pytrace=False)


def _image_finding(provider: str, request: str, status: int) -> Finding:
    return Finding(provider, "image", request, "", "HTTP 200", f"HTTP {status}", BREAKING, "image")


def _pixel_size(answer: Answer) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(answer.raw)) as picture:
            return picture.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None
