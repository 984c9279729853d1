"""The drift report: findings gathered during a run, written for machines and for people.

JSON (``drift.json``), Markdown (``drift.md``) and HTML (``drift.html``), each led by a
one-screen summary per provider and the run's verdict (the suite sets it; see
``conformance/outcome.py``). :meth:`Report.exit_code` is 1 when anything breaking was found,
5 when nothing was checked, else 0. In the contracts package, like the checks it gathers: the
conformance suite writes it, and the mock's validating proxy serves it (``GET /_mock/drift``).
"""

from __future__ import annotations

import html
import json
import threading
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .checks import BREAKING, Finding

__all__ = ["Report"]


class Report:
    """Findings of one run (thread-safe: the proxy adds from its own loop)."""

    def __init__(self, target: str = "mock", max_findings: int = 10_000) -> None:
        self.target = target
        self.started = datetime.now(UTC)
        self.checks: Counter[str] = Counter()  # provider -> checks run
        self._findings: dict[tuple[Any, ...], Finding] = {}
        self._seen: Counter[tuple[Any, ...]] = Counter()  # only of the findings kept
        self._max = max_findings  # distinct findings kept (a proxy's report lives for days)
        self.dropped = 0  # findings not kept: new ones seen after the report was full
        self.outcome: str | None = None  # the run's verdict, when the runner knows more
        self._lock = threading.Lock()

    def checked(self, provider: str, count: int = 1) -> None:
        with self._lock:
            self.checks[provider] += count

    def add(self, findings: Iterable[Finding]) -> list[Finding]:
        """Record findings (the same one seen twice is kept once, and counted)."""
        added = []
        with self._lock:
            for finding in findings:
                key = _key(finding)
                if key not in self._findings:
                    if len(self._findings) >= self._max:
                        self.dropped += 1
                        continue
                    self._findings[key] = finding
                    added.append(finding)
                self._seen[key] += 1
        return added

    @property
    def findings(self) -> list[Finding]:
        with self._lock:
            return list(self._findings.values())

    @property
    def breaking(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == BREAKING]

    def exit_code(self) -> int:
        if self.breaking:
            return 1
        return 0 if self._observed() else 5

    @property
    def verdict(self) -> str:
        """The run's verdict if the runner set one, else what the findings say."""
        if self.outcome is not None:
            return self.outcome
        if self.breaking:
            return "breaking drift found"
        return "no breaking drift" if self._observed() else "nothing checked"

    def _observed(self) -> bool:
        """Was anything checked at all?"""
        with self._lock:
            return bool(sum(self.checks.values()) or self._findings)

    def summary(self) -> dict[str, dict[str, int]]:
        providers = sorted(set(self.checks) | {f.provider for f in self.findings})
        out = {}
        for provider in providers:
            mine = [f for f in self.findings if f.provider == provider]
            out[provider] = {
                "checks": self.checks.get(provider, 0),
                "breaking": sum(f.severity == BREAKING for f in mine),
                "additive": sum(f.severity != BREAKING for f in mine),
            }
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "started": self.started.isoformat(),
            "verdict": self.verdict,
            "summary": self.summary(),
            "breaking": len(self.breaking),
            "dropped": self.dropped,
            "findings": [
                {
                    **f.to_dict(),
                    "times": self._seen[_key(f)],
                }
                for f in self.findings
            ],
        }

    def to_markdown(self) -> str:
        lines = [
            f"# Drift report: {self.target}",
            "",
            f"Run started {self.started:%Y-%m-%d %H:%M} UTC.",
            "",
        ]
        lines += ["| provider | checks | breaking | additive |", "|---|---|---|---|"]
        for provider, row in self.summary().items():
            lines.append(
                f"| {provider} | {row['checks']} | {row['breaking']} | {row['additive']} |"
            )
        lines += ["", f"**Verdict: {_md(self.verdict)}.**", ""]
        for provider in self.summary():
            mine = [f for f in self.findings if f.provider == provider]
            if not mine:
                continue
            lines += [
                f"## {provider}",
                "",
                "| severity | operation | pointer | expected | observed | request |",
                "|---|---|---|---|---|---|",
            ]
            lines += [
                f"| {f.severity} | {f.operation} | `{f.pointer or '/'}` | {_md(f.expected)} | "
                f"{_md(f.observed)} | {_md(f.request)} |"
                for f in mine
            ]
            lines.append("")
        return "\n".join(lines)

    def to_html(self) -> str:
        rows = "".join(
            f"<tr class='{f.severity}'><td>{html.escape(f.provider)}</td><td>{f.severity}</td>"
            f"<td>{html.escape(f.operation)}</td>"
            f"<td><code>{html.escape(f.pointer or '/')}</code></td>"
            f"<td>{html.escape(f.expected)}</td><td>{html.escape(f.observed)}</td>"
            f"<td>{html.escape(f.request)}</td></tr>"
            for f in self.findings
        )
        summary = "".join(
            f"<tr><td>{p}</td><td>{r['checks']}</td><td>{r['breaking']}</td><td>{r['additive']}</td></tr>"
            for p, r in self.summary().items()
        )
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Drift report</title>"
            "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}"
            ".breaking{background:#fdd}.additive{background:#ffd}</style></head><body>"
            f"<h1>Drift report: {html.escape(self.target)}</h1>"
            f"<p><strong>Verdict: {html.escape(self.verdict)}.</strong></p>"
            "<table><tr><th>provider</th><th>checks</th><th>breaking</th><th>additive</th></tr>"
            f"{summary}</table><h2>Findings</h2><table><tr><th>provider</th><th>severity</th>"
            "<th>operation</th><th>pointer</th><th>expected</th><th>observed</th><th>request</th></tr>"
            f"{rows}</table></body></html>"
        )

    def write(self, directory: str | Path) -> dict[str, Path]:
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        paths = {
            "json": target / "drift.json",
            "markdown": target / "drift.md",
            "html": target / "drift.html",
        }
        paths["json"].write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        paths["markdown"].write_text(self.to_markdown() + "\n", encoding="utf-8")
        paths["html"].write_text(self.to_html(), encoding="utf-8")
        return paths


def _key(finding: Finding) -> tuple[Any, ...]:
    """One row per distinct break: the same break seen again (another job, another value of a
    renamed field) is counted, not repeated; the first observation is the one shown."""
    return (
        finding.provider,
        finding.operation,
        finding.pointer,
        finding.expected,
        finding.severity,
        finding.check,
    )


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
