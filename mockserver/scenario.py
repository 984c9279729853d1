"""Scenario files: settings, fault rules, credits and rate limits loaded at start-up.

A scenario is YAML or JSON, checked against ``schemas/mock/scenario.json`` (the schema is
the truth; nothing here restates it). Every problem names the file, the line and column
where the offending value starts, its path and the rule, e.g.::

    faults.yaml:7:15: faults[0].effect.http_error.status: 418 is not one of 400, 401, ...

To know where each value starts, the data is built from PyYAML's node tree (or, for JSON,
by a small walker over the already-validated text), recording the start of every value
and every mapping key under its path (a tuple of keys and indexes).

Errors::

    ValueError
     └── ScenarioError      problems: list[str]; str() is one problem per line

Only plain data is accepted: mappings with string keys, lists, strings, numbers, booleans
and null. Tags that build Python objects, duplicate keys, alias bombs (more than
``MAX_NODES`` values once aliases are expanded) and files over ``MAX_BYTES`` are refused.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from json.decoder import scanstring
from json.scanner import NUMBER_RE
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from jsonschema.exceptions import ValidationError, best_match

from nanobanana_mock import schemas

from .faults.rules import rule_problems
from .http import MAX_JSON_DEPTH, hide_secrets, too_deep
from .names import did_you_mean
from .scenario_files import UnknownScenario, locate
from .validation import Explanation, explain

__all__ = ["ScenarioError", "load_scenario", "parse_data", "parse_scenario"]

MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = MAX_JSON_DEPTH  # the one nesting bound of every JSON the mock reads
MAX_PROBLEMS = 100
EXPLAIN_SECONDS = 2.0  # a file is read at start-up, before serving: it may be explained at length

JsonPath = tuple[str | int, ...]

_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_YAML + t for t in ("str", "int", "float", "bool", "null"))
_MERGE = _YAML + "merge"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_JSON_WS = re.compile(r"[ \t\n\r]*")
_JSON_LITERALS = {"true": True, "false": False, "null": None}
_NOT_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_KINDS = {"object": "mapping", "array": "list"}


class ScenarioError(ValueError):
    """A scenario that cannot be used; ``problems`` holds one located message each."""

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = problems.splitlines() if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class _Pos(NamedTuple):
    line: int
    column: int


class _Problem(NamedTuple):
    pos: _Pos
    path: JsonPath
    message: str


@dataclass
class _Located:
    """The start of every value and key, by path, and the problems found while building."""

    source: str
    values: dict[JsonPath, _Pos] = field(default_factory=dict)
    keys: dict[JsonPath, _Pos] = field(default_factory=dict)
    problems: list[_Problem] = field(default_factory=list)
    nodes: int = 0

    def visit(self, path: JsonPath, pos: _Pos) -> None:
        """Record a value; refuse alias bombs and absurd nesting at once."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.fail(pos, path, f"more than {MAX_NODES} values once aliases are expanded")
        if len(path) > MAX_DEPTH:
            self.fail(pos, path, f"nested more than {MAX_DEPTH} levels deep")
        self.values[path] = pos

    def add_key(self, mapping: dict[str, Any], path: JsonPath, pos: _Pos) -> bool:
        """Record a key of ``mapping``; a duplicate is a problem naming both lines."""
        if path[-1] in mapping:
            first = self.keys[path].line
            self.problem(pos, path, f"duplicate key (first at line {first})")
            return False
        self.keys[path] = pos
        return True

    def problem(self, pos: _Pos, path: JsonPath, message: str) -> None:
        self.problems.append(_Problem(pos, path, message))

    def fail(self, pos: _Pos, path: JsonPath, message: str) -> None:
        raise ScenarioError(_render(self.source, [_Problem(pos, path, message)]))

    def at(self, path: JsonPath) -> _Pos:
        """The start of the nearest recorded value on ``path`` (the value or an ancestor)."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.values:
                return self.values[path[:end]]
        return _Pos(1, 1)


def parse_scenario(text: str, source: str = "<scenario>") -> dict[str, Any]:
    """Parse a YAML or JSON scenario, check it against the schema and return its plain data.

    Text starting with ``{`` is read as JSON, anything else as YAML; an empty (or null)
    document is the empty scenario ``{}``. Raises :class:`ScenarioError` listing every problem,
    sorted by line, each as ``source:line:column: path: message``.
    """
    located, data = _read(text, source)
    if data is None:  # no document, or an empty one
        return {}
    if not isinstance(data, dict):
        located.fail(located.at(()), (), f"the top level must be a mapping, got {_kind(data)}")
    found = explain(schemas.validator("mock", "scenario"), data, MAX_PROBLEMS, EXPLAIN_SECONDS)
    problems = [p for error in found.errors for p in _explain(error, located)]
    if not problems and found.complete:  # what the schema cannot see: duplicate ids, bad regexes
        problems = [
            _Problem(located.at(path), path, message)
            for path, message in _fault_rule_problems(data.get("faults", []))
        ]
    if problems or not found.complete:
        raise ScenarioError(_render(source, problems, found))
    return data


def parse_data(text: str, source: str = "<scenario>") -> Any:
    """The plain data of a YAML or JSON document, with the checks of :func:`parse_scenario`
    (size, nesting, aliases, plain types, duplicate keys) but no schema."""
    return _read(text, source)[1]


def _read(text: str, source: str) -> tuple[_Located, Any]:
    text = text.removeprefix("\ufeff")
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ScenarioError(f"{source}: larger than {MAX_BYTES} bytes")
    located = _Located(source)
    is_json = text.lstrip().startswith("{")
    if is_json and too_deep(text, MAX_DEPTH + 1):  # the same bound as the walkers' below
        located.fail(_Pos(1, 1), (), f"nested more than {MAX_DEPTH} levels deep")
    data = (_parse_json if is_json else _parse_yaml)(text, located)
    if located.problems:
        raise ScenarioError(_render(source, located.problems))
    return located, data


def _fault_rule_problems(specs: list[Any]) -> list[tuple[JsonPath, str]]:
    """(path, message) for every fault rule of a scenario that the fault engine would refuse
    when the scenario is applied (the rules are valid against their schema already)."""
    found = []
    for index, where, message in rule_problems(specs):
        prefix = ".".join(map(str, where)) + ": "
        found.append((("faults", index, *where), message.removeprefix(prefix)))
    return found


def load_scenario(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a UTF-8 scenario file, or the packaged scenario of that name
    (:func:`~nanobanana_mock.scenario_files.locate`), and :func:`parse_scenario` it; problems
    name the path."""
    try:
        path = locate(path)
    except UnknownScenario as exc:
        raise ScenarioError(str(exc)) from exc
    source = os.fspath(path)
    try:
        with Path(path).open("rb") as fh:
            raw = fh.read(MAX_BYTES + 4)  # room for a BOM
    except OSError as exc:
        raise ScenarioError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    if len(raw.removeprefix(b"\xef\xbb\xbf")) > MAX_BYTES:
        raise ScenarioError(f"{source}: larger than {MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - raw.rfind(b"\n", 0, exc.start)
        bad = raw[exc.start : exc.start + 1].hex()
        message = f"{source}:{line}:{column}: not valid UTF-8 (byte 0x{bad}: {exc.reason})"
        raise ScenarioError(message) from exc
    return parse_scenario(text, source=source)


# --- rendering -----------------------------------------------------------------------------


# A key or a number may be as long as the file: a problem line stays readable. Its path is
# cut first, so that the allowed names a message lists (the 34 settings) are still whole.
MAX_LINE = 600  # characters of one problem line
MAX_PATH = 100  # characters of its path


def _render(
    source: str, problems: Iterable[_Problem], found: Explanation | None = None
) -> list[str]:
    lines = []
    for pos, path, message in sorted(
        set(problems), key=lambda p: (p.pos, _path_text(p.path), p.message)
    ):
        where = f"{_cut(_path_text(path), MAX_PATH)}: " if path else ""
        lines.append(_cut(f"{source}:{pos.line}:{pos.column}: {where}{message}", MAX_LINE))
    extra = max(0, len(lines) - MAX_PROBLEMS)
    del lines[MAX_PROBLEMS:]
    # the rest, with what a bounded schema check found but did not explain
    tail = found.tail(extra) if found else f"... and {extra} more problems" if extra else None
    if tail is not None:
        lines.append(f"{source}: {tail}")
    return lines


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _path_text(path: JsonPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part, ensure_ascii=False)}]"
    return text


def _show(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "null" if value is None else "boolean"
    names = {int: "integer", float: "number", str: "string", dict: "mapping", list: "list"}
    return names.get(type(value), type(value).__name__)


# --- schema errors -------------------------------------------------------------------------


def _explain(error: ValidationError, located: _Located) -> list[_Problem]:
    """Short, located messages for one jsonschema error."""
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        return _unknown_keys(error, path, located)
    if "propertyNames" in error.schema_path and isinstance(error.instance, str):
        return [_unknown_name(error, path, located)]
    if error.validator in ("oneOf", "anyOf"):
        inner = _branch_error(error)
        if inner is not None:
            return _explain(inner, located)
    shown, _, message = hide_secrets(path, str(error.validator), _message(error))
    return [_Problem(located.at(path), shown, message)]


def _unknown_keys(error: ValidationError, path: JsonPath, located: _Located) -> list[_Problem]:
    known = error.schema.get("properties", {})
    patterns = list(error.schema.get("patternProperties", {}))
    allowed = f"; allowed: {', '.join(known)}" if known else ""
    problems = []
    for key in error.instance:
        if key in known or any(schemas.search(p, key) for p in patterns):
            continue
        at = located.keys.get((*path, key), located.at(path))
        message = f"unknown key{did_you_mean(key, known)}{allowed}"
        problems.append(_Problem(at, (*path, key), message))
    return problems


def _unknown_name(error: ValidationError, path: JsonPath, located: _Located) -> _Problem:
    """A mapping key its ``propertyNames`` refuses (``processing_seconds: {segmnd/*: 5}``),
    located at the key itself."""
    key = error.instance
    at = located.keys.get((*path, key), located.at(path))
    if error.validator != "enum":
        return _Problem(at, (*path, key), f"not an allowed key: {_message(error)}")
    allowed = ", ".join(_names(error))
    return _Problem(
        at, (*path, key), f"unknown key{did_you_mean(key, _names(error))}; allowed: {allowed}"
    )


def _names(error: ValidationError) -> list[str]:
    """The string values of an ``enum`` error's list."""
    return [v for v in error.validator_value if isinstance(v, str)]


def _branch_error(error: ValidationError) -> ValidationError | None:
    """For a oneOf/anyOf of types, the error inside the branch whose type fits, if any."""
    branches = error.validator_value
    fitting = [
        e
        for e in error.context or []
        if _fits(branches[e.relative_schema_path[0]].get("type"), error.instance)
    ]
    return best_match(fitting) if fitting else None


def _fits(types: str | list[str] | None, value: Any) -> bool:
    kind = _kind(value)
    return any(
        _KINDS.get(t, t) == kind or (t, kind) == ("number", "integer") for t in _as_list(types)
    )


def _message(error: ValidationError) -> str:
    rule, value, schema = error.validator, error.instance, error.schema
    if rule == "enum":
        allowed = ", ".join(_show(v) for v in error.validator_value)
        return f"{_show(value)} is not one of {allowed}{did_you_mean(value, _names(error))}"
    if rule == "type":
        wanted = " or ".join(_KINDS.get(t, t) for t in _as_list(error.validator_value))
        return f"expected {wanted}, got {_kind(value)} {_show(value, 40)}"
    if rule == "required":
        missing = next((k for k in error.validator_value if k not in value), "?")
        return f"missing required key {missing!r}"
    if rule in ("minProperties", "maxProperties") and schema.get("maxProperties") == 1:
        given = f"got {', '.join(value)}" if value else "got none"
        return f"needs exactly one of {', '.join(schema.get('properties', {}))}; {given}"
    if rule in ("oneOf", "anyOf"):
        return _alternatives(error)
    if rule in ("minItems", "maxItems", "minProperties", "maxProperties"):
        bound = "at least" if rule.startswith("min") else "at most"
        return f"has {len(value)} entries, {bound} {error.validator_value} allowed"
    return error.message if len(error.message) <= 200 else error.message[:197] + "..."


def _alternatives(error: ValidationError) -> str:
    branches = error.validator_value
    required = [b["required"] for b in branches if set(b) == {"required"}]
    if len(required) == len(branches):
        names = ", ".join(k for keys in required for k in keys)
        given = [k for keys in required for k in keys if k in error.instance]
        return f"needs exactly one of {names}; got {', '.join(given) or 'none'}"
    types = [t for b in branches for t in _as_list(b.get("type"))]
    if types and not any(_fits(t, error.instance) for t in types):
        wanted = " or ".join(_KINDS.get(t, t) for t in types)
        return f"expected {wanted}, got {_kind(error.instance)} {_show(error.instance, 40)}"
    return f"{_show(error.instance)} does not match any allowed form"


def _as_list(types: str | list[str] | None) -> list[str]:
    return [] if types is None else [types] if isinstance(types, str) else list(types)


# --- YAML ----------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader whose dates and ``=`` stay strings; only composing is used, never load()."""

    yaml_implicit_resolvers = {  # noqa: RUF012 - PyYAML's own class-level table
        first: [(tag, rx) for tag, rx in table if tag not in (_YAML + "timestamp", _YAML + "value")]
        for first, table in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _mark(node: yaml.Node) -> _Pos:
    return _Pos(node.start_mark.line + 1, node.start_mark.column + 1)


def _parse_yaml(text: str, located: _Located) -> Any:
    """The data of the single YAML document in ``text`` (None if there is none)."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = _Pos(mark.line + 1, mark.column + 1) if mark else _Pos(1, 1)
        context = f" ({exc.context})" if exc.context else ""
        located.fail(pos, (), f"YAML syntax error: {exc.problem}{context}")
    except yaml.reader.ReaderError as exc:
        message = f"unacceptable character #x{exc.character:04x}: {exc.reason}"
        located.fail(_offset_pos(text, exc.position), (), message)
    except RecursionError:
        located.fail(_Pos(1, 1), (), "nested too deeply")
    finally:
        if loader is not None:
            loader.dispose()
    return None if node is None else _YamlBuilder(loader, located).build(node, ())


class _YamlBuilder:
    """Plain data from a node tree, expanding aliases and ``<<`` merges, recording positions."""

    def __init__(self, loader: _Loader, located: _Located) -> None:
        self.loader = loader
        self.located = located
        self.active: set[int] = set()  # collections being built: an alias back to one recurses

    def build(self, node: yaml.Node, path: JsonPath) -> Any:
        self.located.visit(path, _mark(node))
        if not self._tag_allowed(node, path):
            return None
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if id(node) in self.active:
            self.located.problem(_mark(node), path, "alias refers to a value that contains it")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            return self._mapping(node, path)
        finally:
            self.active.discard(id(node))

    def _tag_allowed(self, node: yaml.Node, path: JsonPath) -> bool:
        expected = {yaml.SequenceNode: _YAML + "seq", yaml.MappingNode: _YAML + "map"}
        if node.tag == expected.get(type(node)) or (
            isinstance(node, yaml.ScalarNode) and node.tag in _SCALAR_TAGS
        ):
            return True
        tag = node.tag.replace(_YAML, "!!")
        message = f"tag {tag} is not allowed (only plain data: mappings, lists and scalars)"
        self.located.problem(_mark(node), path, message)
        return False

    def _scalar(self, node: yaml.ScalarNode, path: JsonPath) -> Any:
        try:
            value = self.loader.construct_object(node)
        except (ValueError, KeyError, yaml.YAMLError):
            tag = node.tag.replace(_YAML, "")
            self.located.problem(_mark(node), path, f"{node.value!r} is not a valid {tag}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.located.problem(_mark(node), path, f"{node.value} is not a finite number")
        return value

    def _mapping(self, node: yaml.MappingNode, path: JsonPath) -> dict[str, Any]:
        own, merged = self._pairs(node, path, {id(node)})
        out: dict[str, Any] = {}
        for key_node, value_node in own:
            key = self._key(key_node, path)
            if key is not None and self.located.add_key(out, (*path, key), _mark(key_node)):
                out[key] = self.build(value_node, (*path, key))
        for key_node, value_node in merged:  # explicit keys win; earlier merges win
            key = self._key(key_node, path)
            if key is not None and key not in out:
                self.located.keys[(*path, key)] = _mark(key_node)
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
                    self.located.problem(_mark(source), path, "<< must merge other mappings")
                    continue
                more_own, more_merged = self._pairs(source, path, seen | {id(source)})
                for pair in (*more_own, *more_merged):
                    self.located.visit(path, _mark(pair[0]))  # merges count towards MAX_NODES
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
        self.located.problem(_mark(node), path, message)
        return None


# --- JSON ----------------------------------------------------------------------------------


def _offset_pos(text: str, offset: int) -> _Pos:
    line = text.count("\n", 0, offset) + 1
    return _Pos(line, offset - text.rfind("\n", 0, offset))


def _parse_json(text: str, located: _Located) -> Any:
    """Check the syntax with :func:`json.loads`, then walk the text to build located data.

    Text that is not JSON but is YAML in flow style (``{seed: 1}``) is read as YAML; when
    neither reads it, the JSON error is reported.
    """
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        try:
            return _parse_yaml(text, located)
        except ScenarioError:
            located.fail(_Pos(exc.lineno, exc.colno), (), f"JSON syntax error: {exc.msg}")
    except RecursionError:
        located.fail(_Pos(1, 1), (), "nested too deeply")
    except ValueError:  # an integer of more digits than int() converts (4300)
        longest = max(re.finditer("[0-9]+", text), key=lambda m: m.end() - m.start())
        at = _offset_pos(text, longest.start())
        located.fail(at, (), f"a number of {longest.end() - longest.start()} digits is too long")
    value, _ = _JsonBuilder(text, located).value(0, ())
    return value


class _JsonBuilder:
    """Builds data from JSON text that :func:`json.loads` has already accepted."""

    def __init__(self, text: str, located: _Located) -> None:
        self.text = text
        self.located = located
        self.line_starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def pos(self, index: int) -> _Pos:
        line = bisect.bisect_right(self.line_starts, index)
        return _Pos(line, index - self.line_starts[line - 1] + 1)

    def skip(self, index: int) -> int:
        return _JSON_WS.match(self.text, index).end()  # type: ignore[union-attr]

    def value(self, index: int, path: JsonPath) -> tuple[Any, int]:
        index = self.skip(index)
        self.located.visit(path, self.pos(index))
        char = self.text[index]
        if char == "{":
            return self._object(index + 1, path)
        if char == "[":
            return self._array(index + 1, path)
        if char == '"':
            return scanstring(self.text, index + 1)
        for word, constant in (*_JSON_LITERALS.items(), *_NOT_FINITE.items()):
            if self.text.startswith(word, index):
                if word in _NOT_FINITE:
                    self.located.problem(self.pos(index), path, f"{word} is not a finite number")
                return constant, index + len(word)
        number = NUMBER_RE.match(self.text, index)
        integer, fraction, exponent = number.groups()  # type: ignore[union-attr]
        end = number.end()  # type: ignore[union-attr]
        if not (fraction or exponent):
            return int(integer), end
        result = float(integer + (fraction or "") + (exponent or ""))
        if not math.isfinite(result):
            self.located.problem(self.pos(index), path, "not a finite number")
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
            if self.located.add_key(out, (*path, key), key_pos):
                out[key] = value
            index = self.skip(index)
            index = self.skip(index + 1) if self.text[index] == "," else index
        return out, index + 1
