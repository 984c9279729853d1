"""The scorecard (``engine/scorecard.py``'s JSON) as Markdown and as one HTML page.

Pure functions of the JSON, so the control client renders the same text the mock serves.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["describe", "to_html", "to_markdown"]

Card = Mapping[str, Any]


def _usd(value: float) -> str:
    return f"${value:.4f}"


def describe(finding: Mapping[str, Any]) -> str:
    """One finding on one line: rule, key, job, entries and wasted dollars."""
    entries = ", ".join(map(str, finding["entries"]))
    return (
        f"{finding['rule']}: {finding['message']} [key {finding['key']}, "
        f"{finding['provider']} job {finding['job']}, journal entries {entries}; "
        f"wasted {finding['wasted_requests']} request(s), {_usd(finding['wasted_usd'])}]"
    )


def _summary(card: Card) -> tuple[str, list[str]]:
    findings = sum(rule["findings"] for rule in card["rules"])
    wasted = sum(k["wasted_requests"] for k in card["keys"])
    usd = sum(k["wasted_usd"] for k in card["keys"])
    verdict = "Clean: no findings" if card["clean"] else f"{findings} finding(s)"
    notes = [
        f"{card['entries']} journal entries judged"
        + (f" (tenant {card['tenant']!r})" if card["tenant"] else ""),
        f"{wasted} wasted request(s), {_usd(usd)} wasted",
    ]
    if card["dropped"]:
        notes.append(f"{card['dropped']} older entries dropped from the journal, not judged")
    if card.get("truncated"):
        notes.append(f"only the first {len(card['findings'])} findings are listed")
    return verdict, notes


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


RULE_HEAD = ("rule", "threshold", "findings")
FINDING_HEAD = ("rule", "key", "job", "what happened", "entries", "wasted")
KEY_HEAD = ("key", "requests", "findings", "wasted requests", "wasted $")


def _rule_rows(card: Card) -> list[tuple[Any, ...]]:
    return [(f"{r['title']} ({r['rule']})", r["threshold"], r["findings"]) for r in card["rules"]]


def _finding_rows(card: Card) -> list[tuple[Any, ...]]:
    return [
        (
            f["rule"],
            f["key"],
            f"{f['provider']} {f['job'] or ''}".strip(),
            f["message"],
            ", ".join(map(str, f["entries"])),
            f"{f['wasted_requests']} req, {_usd(f['wasted_usd'])}",
        )
        for f in card["findings"]
    ]


def _key_rows(card: Card) -> list[tuple[Any, ...]]:
    return [
        (k["key"], k["requests"], k["findings"], k["wasted_requests"], _usd(k["wasted_usd"]))
        for k in card["keys"]
    ]


def to_markdown(card: Card) -> str:
    verdict, notes = _summary(card)
    lines = ["# Client resilience scorecard", "", f"**{verdict}**; " + "; ".join(notes) + ".", ""]
    lines += _table(RULE_HEAD, _rule_rows(card))
    if card["findings"]:
        lines += ["", "## Findings", "", *_table(FINDING_HEAD, _finding_rows(card))]
    if card["keys"]:
        lines += ["", "## Keys", "", *_table(KEY_HEAD, _key_rows(card))]
    return "\n".join(lines) + "\n"


def _html_table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def to_html(card: Card) -> str:
    verdict, notes = _summary(card)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Client resilience scorecard"
        "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;"
        "vertical-align:top}</style></head><body>",
        "<h1>Client resilience scorecard</h1>",
        f"<p><strong>{html.escape(verdict)}</strong>; {html.escape('; '.join(notes))}.</p>",
        _html_table(RULE_HEAD, _rule_rows(card)),
    ]
    if card["findings"]:
        parts += ["<h2>Findings</h2>", _html_table(FINDING_HEAD, _finding_rows(card))]
    if card["keys"]:
        parts += ["<h2>Keys</h2>", _html_table(KEY_HEAD, _key_rows(card))]
    parts.append("</body></html>")
    return "".join(parts)
