"""The repository cites only what a user of it has, and its Markdown links resolve.

The provider facts the project was written from are in docs/providers.md, each with its
public source. A citation of a working file that never shipped with the repository (the
team's private fact sheets, its copies of the documentation pages, numbered or by path)
sends a reader nowhere, so no tracked file may hold one. Every relative link in the
Markdown files must point at a file of the repository, and at a heading that exists.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from nanobanana_mock.engine import images

ROOT = Path(__file__).resolve().parents[1]

# Written so that this file does not match itself.
PRIVATE_CITATIONS = {
    "the private provider fact sheet": re.compile(r"PROVIDERS\.md"),
    "the private surfaces fact sheet": re.compile(r"SURFACES\.md"),
    "the private design notes": re.compile(r"\bDESIGN\.md"),
    "the private style notes": re.compile(r"\bSTYLE\.md"),
    "a path into the private copies of the documentation pages": re.compile(r"\bseeds[/]"),
    "a private documentation page by number": re.compile(r"\bseeds? 00[0-4]\b", re.I),
    "the folder beside the repository": re.compile(r"\.\./shared\b|/work[/]shared\b"),
}
SKIPPED_DIRS = {".git", ".venv", "build", "dist", "reports", "node_modules"}

LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.M)
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.I)
SCHEME = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.I)


@cache
def tracked() -> frozenset[str]:
    """Tracked files, and new ones git does not ignore, relative to the root, with /."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk it
        return frozenset(_walk())
    return frozenset(p for p in out.decode().split("\0") if p and (ROOT / p).is_file())


def _walk() -> Iterator[str]:
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if path.is_file() and not SKIPPED_DIRS & set(parts) and "__pycache__" not in parts:
            yield "/".join(parts)


def text_of(name: str) -> str | None:
    try:
        return (ROOT / name).read_text(encoding="utf-8")
    except UnicodeDecodeError:  # a binary file cites nothing
        return None


def markdown_files() -> list[str]:
    return sorted(name for name in tracked() if name.endswith(".md"))


# ------------------------------------------------------------------ citations


def private_citations(name: str, text: str) -> Iterator[str]:
    for number, line in enumerate(text.splitlines(), 1):
        for what, pattern in PRIVATE_CITATIONS.items():
            for hit in pattern.finditer(line):
                yield f"{name}:{number}: {hit.group()!r} cites {what}"


def test_no_file_cites_what_users_do_not_have() -> None:
    found = [
        finding
        for name in sorted(tracked())
        if (text := text_of(name)) is not None
        for finding in private_citations(name, text)
    ]
    assert not found, "cite docs/providers.md or the public source instead:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "line",
    [
        "pixel sizes (" + "PROVIDERS" + ".md §6)",
        "see " + "SURFACES" + ".md",
        "from /work/" + "shared/" + "seeds" + "/003_f2550ef866de0c5e.txt",
        "[DOC " + "seed" + " 004] status table",
        "[DOC " + "seeds" + " 000-001]",
        "../" + "shared/README.md",
    ],
)
def test_each_kind_of_private_citation_is_caught(line: str) -> None:
    assert list(private_citations("x", line))


@pytest.mark.parametrize(
    "line",
    ["--seed 0", "request.nano-banana-pro.seed000.json", "the image seed 4200", "shared by all"],
)
def test_ordinary_words_are_not_citations(line: str) -> None:
    assert not list(private_citations("x", line))


# ------------------------------------------------------------------ links


def without_fences(markdown: str) -> str:
    """The Markdown with every line of a fenced code block blanked."""
    kept, fence = [], ""
    for line in markdown.splitlines():
        opener = FENCE.match(line)
        if fence:
            fence, line = ("" if _closes(line, fence) else fence), ""
        elif opener:
            fence, line = opener.group(1), ""
        kept.append(line)
    return "\n".join(kept)


def _closes(line: str, fence: str) -> bool:
    """A closing fence: the opener's character only, at least as many, no info string."""
    mark = line.strip()
    return set(mark) == {fence[0]} and len(mark) >= len(fence)


def prose(markdown: str) -> str:
    """The Markdown without code blocks, code spans and comments, where links are not links."""
    return CODE_SPAN.sub("", without_fences(COMMENT.sub("", markdown)))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower-cased, punctuation dropped, - for space."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[`*]|<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    seen: dict[str, int] = {}
    found = set(HTML_ANCHOR.findall(markdown))
    for _, heading in HEADING.findall(without_fences(markdown)):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(markdown: str) -> list[str]:
    text = prose(markdown)
    return LINK.findall(text) + REF_DEF.findall(text)


def broken_link(source: str, target: str) -> str | None:
    """Why a relative link from the Markdown file ``source`` does not resolve, or None."""
    if SCHEME.match(target):
        return None
    path, _, anchor = target.partition("#")
    name = source if not path else _resolve(source, path)
    if name is None:
        return "points outside the repository"
    if name not in tracked() and not any(t.startswith(name.rstrip("/") + "/") for t in tracked()):
        return f"{name} is not a file of the repository"
    if anchor and name.endswith(".md") and anchor not in anchors(text_of(name) or ""):
        return f"{name} has no heading with the anchor #{anchor}"
    return None


def _resolve(source: str, path: str) -> str | None:
    target = (ROOT / source).parent / path
    try:
        return target.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return None


@pytest.mark.parametrize("name", markdown_files())
def test_relative_links_resolve(name: str) -> None:
    text = text_of(name) or ""
    broken = [
        f"{name}: ({target}) {why}"
        for target in links(text)
        if (why := broken_link(name, target)) is not None
    ]
    assert not broken, "\n".join(broken)


def test_the_checked_markdown_includes_the_user_documents() -> None:
    assert {"README.md", "ARCHITECTURE.md", "docs/providers.md"} <= set(markdown_files())


@pytest.mark.parametrize(
    ("target", "broken"),
    [
        ("ARCHITECTURE.md", False),
        ("#quick-start", False),
        ("#the-contracts-schemas", False),
        ("#no-such-heading", True),
        ("ARCHITECTURE.md#architecture", False),
        ("ARCHITECTURE.md#nowhere", True),
        ("mockserver/", False),
        ("docs/missing.md", True),
        ("../outside.md", True),
        ("https://example.com/x.md#y", False),
    ],
)
def test_the_link_check_tells_good_from_broken(target: str, broken: bool) -> None:
    assert (broken_link("README.md", target) is not None) is broken


def test_slugs_follow_github() -> None:
    assert slug("The contracts (`schemas/`)") == "the-contracts-schemas"
    assert slug("Segmind: auth, endpoints") == "segmind-auth-endpoints"
    assert slug("nano_banana_2 [DOC]") == "nano_banana_2-doc"
    assert anchors("# A\n## A\n```\n# A\n```\n") == {"a", "a-1"}


# ------------------------------------------------------------------ the notes agree with the mock


def size_table(markdown: str) -> dict[str, list[str]]:
    """The rows of the first table under the "Output image sizes" heading: ratio -> cells."""
    section = markdown.split("## Output image sizes", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("|")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[2:]}


def test_the_notes_size_table_is_what_the_mock_serves() -> None:
    table = size_table(text_of("docs/providers.md") or "")
    assert set(table) == set(images.STANDARD_RATIOS)
    for ratio, cells in table.items():
        served = [images.pixel_size("nano-banana-pro", ratio, tier) for tier in ("1K", "2K", "4K")]
        assert cells == [f"{w}\u00d7{h}" for w, h in served], ratio
