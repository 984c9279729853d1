"""Located documents: YAML or JSON a person wrote, read so that every problem names its place.

One loader for every document the project reads from a file or a person: scenario files
(``nanobanana-mock --scenario``, the pytest marker's ``scenario=``, the control plane's
``scenario_file``) and drift scenarios (``nanobanana-conformance --scenario``). A problem is
one line, the same on every way in::

    faults.yaml:7:15: faults[0].effect.http_error.status: 418 is not one of 400, 401, ...

To know where each value starts, the data is built from PyYAML's node tree (or, for JSON,
by a small walker over the already-checked text), recording the start of every value and
every mapping key under its path (a tuple of keys and indexes).

Errors::

    ValueError
     └── DocumentError      problems: list[str]; str() is one problem per line

Only plain data is accepted: mappings with string keys, lists, strings, numbers, booleans
and null. Tags that build Python objects, duplicate keys, alias bombs (more than
``MAX_NODES`` values once aliases are expanded), nesting deeper than :data:`MAX_JSON_DEPTH`
and files over ``MAX_BYTES`` are refused.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import re
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from json.decoder import scanstring  # type: ignore[attr-defined]  # public, but not in typeshed
from json.scanner import NUMBER_RE
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import yaml

from .violations import MORE, Violation, dotted

__all__ = [
    "MAX_BYTES",
    "MAX_JSON_DEPTH",
    "Document",
    "DocumentError",
    "Pos",
    "parse_document",
    "read_document",
    "read_text",
    "too_deep",
]

MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_LINES = 100  # problems one refusal names

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects in any JSON the project reads from outside: provider
and control-plane bodies, scenario files, recordings, upstream answers. Real bodies nest 3
deep; past a few hundred levels the standard library, orjson (which writes at most 254) and
the validators fail in ways a client could otherwise provoke."""

JsonPath = tuple[str | int, ...]

_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_YAML + t for t in ("str", "int", "float", "bool", "null"))
_MERGE = _YAML + "merge"
_JSON_WS = re.compile(r"[ \t\n\r]*")
_JSON_LITERALS = {"true": True, "false": False, "null": None}
_NOT_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class DocumentError(ValueError):
    """A document that cannot be used; ``problems`` holds one located message each."""

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = problems.splitlines() if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class Pos(NamedTuple):
    line: int
    column: int


class _Problem(NamedTuple):
    pos: Pos
    path: JsonPath
    message: str


@dataclass
class Document:
    """Plain data read from ``source``, and where each value and mapping key starts."""

    source: str
    data: Any = None
    values: dict[JsonPath, Pos] = field(default_factory=dict)
    keys: dict[JsonPath, Pos] = field(default_factory=dict)
    located: bool = True  # False: data given as it is (a control-plane body), no lines
    _problems: list[_Problem] = field(default_factory=list, repr=False)
    _nodes: int = field(default=0, repr=False)

    @classmethod
    def of(cls, data: Any, source: str = "") -> Document:
        """Data that was not read from text (a JSON body already parsed): problems name
        their path only."""
        return cls(source, data, located=False)

    def at(self, path: JsonPath) -> Pos:
        """The start of the nearest recorded value on ``path`` (the value or an ancestor)."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.values:
                return self.values[path[:end]]
        return Pos(1, 1)

    def key_at(self, path: JsonPath) -> Pos:
        """The start of the mapping key that ends ``path``, else of its nearest value."""
        return self.keys.get(path) or self.at(path)

    def nested(self, prefix: JsonPath, data: Any) -> Document:
        """The same document seen as ``data``, which holds this document's data at
        ``prefix`` (a list of rules read as a scenario's ``faults``)."""
        return Document(
            self.source,
            data,
            {(*prefix, *path): pos for path, pos in self.values.items()},
            {(*prefix, *path): pos for path, pos in self.keys.items()},
            self.located,
        )

    def lines(self, violations: Iterable[Violation]) -> list[str]:
        """One line a violation, placed, sorted by place; a :data:`MORE` violation last."""
        problems, tail = [], None
        for each in violations:
            if each.rule == MORE:
                tail = each.message
                continue
            at = self.key_at(each.path) if _at_key(each) else self.at(each.path)
            problems.append(_Problem(at, each.path, each.message))
        return self._render(problems, tail)

    def refuse(self, violations: Iterable[Violation]) -> NoReturn:
        """Raise a :class:`DocumentError` naming each violation in place."""
        raise DocumentError(self.lines(violations))

    # -- reading ----------------------------------------------------------------------------

    def _visit(self, path: JsonPath, pos: Pos) -> None:
        """Record a value; refuse alias bombs and absurd nesting at once."""
        self._nodes += 1
        if self._nodes > MAX_NODES:
            self._fail(pos, path, f"more than {MAX_NODES} values once aliases are expanded")
        if len(path) > MAX_JSON_DEPTH:
            self._fail(pos, path, f"nested more than {MAX_JSON_DEPTH} levels deep")
        self.values[path] = pos

    def _add_key(self, mapping: dict[str, Any], path: JsonPath, pos: Pos) -> bool:
        """Record a key of ``mapping``; a duplicate is a problem naming both lines."""
        if path[-1] in mapping:
            first = self.keys[path].line
            self._problem(pos, path, f"duplicate key (first at line {first})")
            return False
        self.keys[path] = pos
        return True

    def _problem(self, pos: Pos, path: JsonPath, message: str) -> None:
        self._problems.append(_Problem(pos, path, message))

    def _fail(self, pos: Pos, path: JsonPath, message: str) -> NoReturn:
        raise DocumentError(self._render([_Problem(pos, path, message)]))

    def _render(self, problems: Iterable[_Problem], tail: str | None = None) -> list[str]:
        lines = []
        for pos, path, message in sorted(
            set(problems), key=lambda p: (p.pos, dotted(p.path), p.message)
        ):
            where = f"{_cut(dotted(path), MAX_PATH)}: " if path else ""
            place = f"{self.source}:{pos.line}:{pos.column}: " if self.located else ""
            lines.append(_cut(f"{place}{where}{message}", MAX_LINE))
        extra = max(0, len(lines) - MAX_LINES)
        del lines[MAX_LINES:]
        if tail is None and extra:
            tail = f"... and {extra} more problems"
        if tail is not None:
            lines.append(f"{self.source}: {tail}" if self.located else tail)
        return lines


def _at_key(violation: Violation) -> bool:
    """Is the violation about a mapping key itself (an unknown or refused key)?"""
    return violation.rule in ("additionalProperties", "propertyNames")


# A key or a number may be as long as the file: a problem line stays readable. Its path is
# cut first, so that the allowed names a message lists (the 34 settings) are still whole.
MAX_LINE = 600  # characters of one problem line
MAX_PATH = 100  # characters of its path


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_document(text: str, source: str = "<document>") -> Document:
    """The plain data of a YAML or JSON document, and where each value starts.

    Text starting with ``{`` is read as JSON, anything else as YAML (JSON that is not
    strict, YAML in flow style, is read as YAML); no document, or an empty one, is None.
    Raises :class:`DocumentError` listing every problem, sorted by line, each as
    ``source:line:column: path: message``."""
    text = text.removeprefix("\ufeff")
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise DocumentError(f"{source}: larger than {MAX_BYTES} bytes")
    document = Document(source)
    is_json = text.lstrip().startswith("{")
    if is_json and too_deep(text, MAX_JSON_DEPTH + 1):  # the same bound as the walkers'
        document._fail(Pos(1, 1), (), f"nested more than {MAX_JSON_DEPTH} levels deep")
    document.data = (_parse_json if is_json else _parse_yaml)(text, document)
    if document._problems:
        raise DocumentError(document._render(document._problems))
    return document


def read_document(path: str | os.PathLike[str]) -> Document:
    """Read a UTF-8 file and :func:`parse_document` it; problems name the path as given."""
    return parse_document(read_text(path), os.fspath(path))


def read_text(path: str | os.PathLike[str]) -> str:
    """A document file's text (UTF-8, at most :data:`MAX_BYTES`); problems name the path."""
    source = os.fspath(path)
    try:
        with Path(path).open("rb") as fh:
            raw = fh.read(MAX_BYTES + 4)  # room for a BOM
    except OSError as exc:
        raise DocumentError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    return decode(raw, source)


def decode(raw: bytes, source: str) -> str:
    """A document's bytes as text (UTF-8, an optional BOM); the first bad byte is placed."""
    if len(raw.removeprefix(b"\xef\xbb\xbf")) > MAX_BYTES:
        raise DocumentError(f"{source}: larger than {MAX_BYTES} bytes")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - raw.rfind(b"\n", 0, exc.start)
        bad = raw[exc.start : exc.start + 1].hex()
        message = f"{source}:{line}:{column}: not valid UTF-8 (byte 0x{bad}: {exc.reason})"
        raise DocumentError(message) from exc


# -- nesting -----------------------------------------------------------------------------------

# a JSON string; a missing closing quote is a match too, so the search stays linear
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


def too_deep(raw: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests arrays and objects more than ``limit`` levels deep.

    Cheap on the hot path (fewer brackets than ``limit`` cannot nest deeper); otherwise
    strings are dropped and the deepest running count of open brackets is taken, in C
    (about 10 ms for 256 KiB of brackets). Linear on any input; text whose brackets do not
    balance is not JSON, and is left to the parser to refuse."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    # strings dropped, then +1 for an opener and -1 (0xff as a signed byte) for a closer
    steps = _JSON_STRING.sub(b"", data).translate(_STEPS, _NOT_BRACKETS)
    if steps.count(b"\x01") * 2 != len(steps):
        return False  # unbalanced: not JSON, which the parser says better
    leaves = steps.replace(b"\x01\xff", b"")  # empty innermost pairs: each path loses one level
    if len(leaves) < len(steps):
        steps, limit = leaves, limit - 1
    return bool(steps) and max(accumulate(array("b", steps))) > limit


# -- YAML --------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader whose dates and ``=`` stay strings; only composing is used, never load()."""

    yaml_implicit_resolvers = {  # noqa: RUF012 - PyYAML's own class-level table
        first: [(tag, rx) for tag, rx in table if tag not in (_YAML + "timestamp", _YAML + "value")]
        for first, table in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _mark(node: yaml.Node) -> Pos:
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1)


def _offset_pos(text: str, offset: int) -> Pos:
    line = text.count("\n", 0, offset) + 1
    return Pos(line, offset - text.rfind("\n", 0, offset))


def _parse_yaml(text: str, document: Document) -> Any:
    """The data of the single YAML document in ``text`` (None if there is none)."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Pos(mark.line + 1, mark.column + 1) if mark else Pos(1, 1)
        context = f" ({exc.context})" if exc.context else ""
        document._fail(pos, (), f"YAML syntax error: {exc.problem}{context}")
    except yaml.reader.ReaderError as exc:
        message = f"unacceptable character #x{exc.character:04x}: {exc.reason}"
        document._fail(_offset_pos(text, exc.position), (), message)
    except RecursionError:
        document._fail(Pos(1, 1), (), "nested too deeply")
    finally:
        if loader is not None:
            loader.dispose()
    return None if node is None else _YamlBuilder(loader, document).build(node, ())


class _YamlBuilder:
    """Plain data from a node tree, expanding aliases and ``<<`` merges, recording positions."""

    def __init__(self, loader: _Loader, document: Document) -> None:
        self.loader = loader
        self.document = document
        self.active: set[int] = set()  # collections being built: an alias back to one recurses

    def build(self, node: yaml.Node, path: JsonPath) -> Any:
        self.document._visit(path, _mark(node))
        if not self._tag_allowed(node, path):
            return None
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if id(node) in self.active:
            self.document._problem(_mark(node), path, "alias refers to a value that contains it")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, path)
        finally:
            self.active.discard(id(node))

    def _tag_allowed(self, node: yaml.Node, path: JsonPath) -> bool:
        expected: dict[type[yaml.Node], str] = {
            yaml.SequenceNode: _YAML + "seq",
            yaml.MappingNode: _YAML + "map",
        }
        if node.tag == expected.get(type(node)) or (
            isinstance(node, yaml.ScalarNode) and node.tag in _SCALAR_TAGS
        ):
            return True
        tag = node.tag.replace(_YAML, "!!")
        message = f"tag {tag} is not allowed (only plain data: mappings, lists and scalars)"
        self.document._problem(_mark(node), path, message)
        return False

    def _scalar(self, node: yaml.ScalarNode, path: JsonPath) -> Any:
        try:
            value = self.loader.construct_object(node)
        except (ValueError, KeyError, yaml.YAMLError):
            tag = node.tag.replace(_YAML, "")
            self.document._problem(_mark(node), path, f"{node.value!r} is not a valid {tag}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.document._problem(_mark(node), path, f"{node.value} is not a finite number")
        return value

    def _mapping(self, node: yaml.MappingNode, path: JsonPath) -> dict[str, Any]:
        own, merged = self._pairs(node, path, {id(node)})
        out: dict[str, Any] = {}
        for key_node, value_node in own:
            key = self._key(key_node, path)
            if key is not None and self.document._add_key(out, (*path, key), _mark(key_node)):
                out[key] = self.build(value_node, (*path, key))
        for key_node, value_node in merged:  # explicit keys win; earlier merges win
            key = self._key(key_node, path)
            if key is not None and key not in out:
                self.document.keys[(*path, key)] = _mark(key_node)
                out[key] = self.build(value_node, (*path, key))
        return out

    def _pairs(
        self, node: yaml.MappingNode, path: JsonPath, seen: set[int]
    ) -> tuple[list[tuple[yaml.Node, yaml.Node]], list[tuple[yaml.Node, yaml.Node]]]:
        """The explicit pairs of a mapping, and the pairs its ``<<`` keys merge in."""
        own, merged = [], []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                own.append((key_node, value_node))
                continue
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in sources:
                if not isinstance(source, yaml.MappingNode) or id(source) in seen:
                    self.document._problem(_mark(source), path, "<< must merge other mappings")
                    continue
                more_own, more_merged = self._pairs(source, path, seen | {id(source)})
                for pair in (*more_own, *more_merged):
                    self.document._visit(path, _mark(pair[0]))  # merges count towards MAX_NODES
                    merged.append(pair)
        return own, merged

    def _key(self, node: yaml.Node, path: JsonPath) -> str | None:
        if isinstance(node, yaml.ScalarNode) and node.tag in _SCALAR_TAGS:
            key = self.loader.construct_object(node) if node.tag != _YAML + "str" else node.value
            if isinstance(key, str):
                return key
            message = f"key {node.value!r} is read as {_kind(key)}, not a string; quote it"
        else:
            message = "keys must be strings"
        self.document._problem(_mark(node), path, message)
        return None


def _kind(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "null" if value is None else "boolean"
    names = {int: "integer", float: "number", str: "string", dict: "mapping", list: "list"}
    return names.get(type(value), type(value).__name__)


# -- JSON --------------------------------------------------------------------------------------


def _parse_json(text: str, document: Document) -> Any:
    """Check the syntax with :func:`json.loads`, then walk the text to build located data.

    Text that is not JSON but is YAML in flow style (``{seed: 1}``) is read as YAML; when
    neither reads it, the JSON error is reported.
    """
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        try:
            return _parse_yaml(text, document)
        except DocumentError:
            document._fail(Pos(exc.lineno, exc.colno), (), f"JSON syntax error: {exc.msg}")
    except RecursionError:
        document._fail(Pos(1, 1), (), "nested too deeply")
    except ValueError:  # an integer of more digits than int() converts (4300)
        longest = max(re.finditer("[0-9]+", text), key=lambda m: m.end() - m.start())
        at = _offset_pos(text, longest.start())
        document._fail(at, (), f"a number of {longest.end() - longest.start()} digits is too long")
    value, _ = _JsonBuilder(text, document).value(0, ())
    return value


class _JsonBuilder:
    """Builds data from JSON text that :func:`json.loads` has already accepted."""

    def __init__(self, text: str, document: Document) -> None:
        self.text = text
        self.document = document
        self.line_starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def pos(self, index: int) -> Pos:
        line = bisect.bisect_right(self.line_starts, index)
        return Pos(line, index - self.line_starts[line - 1] + 1)

    def skip(self, index: int) -> int:
        return _JSON_WS.match(self.text, index).end()  # type: ignore[union-attr]

    def value(self, index: int, path: JsonPath) -> tuple[Any, int]:
        index = self.skip(index)
        self.document._visit(path, self.pos(index))
        char = self.text[index]
        if char == "{":
            return self._object(index + 1, path)
        if char == "[":
            return self._array(index + 1, path)
        if char == '"':
            text, end = scanstring(self.text, index + 1)
            return str(text), int(end)
        for word, constant in (*_JSON_LITERALS.items(), *_NOT_FINITE.items()):
            if self.text.startswith(word, index):
                if word in _NOT_FINITE:
                    self.document._problem(self.pos(index), path, f"{word} is not a finite number")
                return constant, index + len(word)
        number = NUMBER_RE.match(self.text, index)
        integer, fraction, exponent = number.groups()  # type: ignore[union-attr]
        end = number.end()  # type: ignore[union-attr]
        if not (fraction or exponent):
            return int(integer), end
        result = float(integer + (fraction or "") + (exponent or ""))
        if not math.isfinite(result):
            self.document._problem(self.pos(index), path, "not a finite number")
        return result, end

    def _array(self, index: int, path: JsonPath) -> tuple[list[Any], int]:
        items: list[Any] = []
        index = self.skip(index)
        while self.text[index] != "]":
            item, index = self.value(index, (*path, len(items)))
            items.append(item)
            index = self.skip(index)
            index = self.skip(index + 1) if self.text[index] == "," else index
        return items, index + 1

    def _object(self, index: int, path: JsonPath) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        index = self.skip(index)
        while self.text[index] != "}":
            key_pos = self.pos(index)
            key, index = scanstring(self.text, index + 1)
            value, index = self.value(self.skip(index) + 1, (*path, key))  # past the colon
            if self.document._add_key(out, (*path, key), key_pos):
                out[key] = value
            index = self.skip(index)
            index = self.skip(index + 1) if self.text[index] == "," else index
        return out, index + 1
