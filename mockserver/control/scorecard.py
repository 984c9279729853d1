"""The scorecard as :meth:`MockControl.scorecard` returns it: a test asserts it clean.

    nanobanana_mock.scorecard().assert_clean()   # the pytest plugin's fixture

The failure message lists each finding on a line: its rule, key, job, journal entries and
wasted dollars (``engine/scorecard_report.py`` words it, as the mock's Markdown does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..engine.scorecard_report import describe, to_html, to_markdown

__all__ = ["Scorecard"]


class Scorecard:
    """``GET /_mock/scorecard``'s answer (``schemas/mock/control/scorecard.json``)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = dict(data)

    @property
    def clean(self) -> bool:
        return bool(self.data["clean"])

    @property
    def findings(self) -> list[dict[str, Any]]:
        """Each finding: rule, key, provider, job, message, wasted_requests, wasted_usd and
        the journal ``entries`` (seq) that prove it."""
        return list(self.data["findings"])

    @property
    def keys(self) -> list[dict[str, Any]]:
        return list(self.data["keys"])

    def by_rule(self, rule: str) -> list[dict[str, Any]]:
        return [f for f in self.data["findings"] if f["rule"] == rule]

    def markdown(self) -> str:
        return to_markdown(self.data)

    def html(self) -> str:
        return to_html(self.data)

    def assert_clean(self) -> None:
        """An ``AssertionError`` listing each finding readably, unless there are none."""
        if self.clean:
            return
        findings = self.data["findings"]
        more = " (more not listed)" if self.data.get("truncated") else ""
        lines = [f"the client resilience scorecard has {len(findings)} finding(s){more}:"]
        lines += [f"- {describe(f)}" for f in findings]
        raise AssertionError("\n".join(lines))

    def __repr__(self) -> str:
        return f"Scorecard(clean={self.clean}, findings={len(self.data['findings'])})"
