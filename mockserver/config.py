"""Every setting of the mock, in one frozen object.

Each field declares its command-line flag, its environment variable and its help text, so
the CLI and the environment are generated from this one place. Precedence: explicit flag,
then environment variable, then the default here.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["ConfigError", "MockConfig", "config_from_env"]

ENV_PREFIX = "MOCK_"
# Upper bounds of the slow-client settings: a deadline longer than an hour is no deadline
# (aiohttp's own keep-alive default is about an hour), and more connections than this would
# exceed any sane open-file limit (the server lowers the cap further to fit the real limit).
MAX_CLIENT_TIMEOUT = 3600.0
MAX_CONNECTIONS = 65_536
# Worker processes on one port (--processes): more than a machine has cores only adds
# context switches, and each holds its own copy of the schemas and caches.
MAX_PROCESSES = 64
# The schemes of a shared store's URL (redis-py's own): TCP, TLS, and a local socket.
STORE_SCHEMES = ("redis", "rediss", "unix")
MAX_STORE_DB = 65_535  # a Redis logical database number (redis.conf's "databases" - 1)


class ConfigError(ValueError):
    """A setting has a value the mock cannot use."""


def _opt(
    help_text: str, parse: Callable[[str], Any] | None = None, default_text: str | None = None
) -> dict[str, Any]:
    """A field's flag metadata; ``default_text`` says what an empty default means."""
    return {"help": help_text, "parse": parse, "default_text": default_text}


def _optional(text: str) -> str | None:
    return text.strip() or None


def _optional_int(text: str) -> int | None:
    """A whole number, or none for a blank."""
    if not text.strip():
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"expected a whole number, got {_short(repr(text))}") from None


def parse_keys(text: str) -> frozenset[str]:
    """``"k1,k2"`` -> the set of accepted API keys (blank entries dropped)."""
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def parse_float_map(text: str) -> Mapping[str, float]:
    """``"seaart=600,pixazo=900"`` -> ``{"seaart": 600.0, "pixazo": 900.0}``."""
    result: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"expected NAME=SECONDS, got {_short(repr(part))}")
        try:
            if not value.isascii():  # float("\u0663") is 3.0: ASCII only
                raise ValueError(value)
            result[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"{_short(repr(part))}: the value is not a number") from None
    return MappingProxyType(result)


def parse_url_map(text: str) -> Mapping[str, str]:
    """``"segmind=https://api.segmind.com"`` -> ``{"segmind": "https://api.segmind.com"}``."""
    result: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(f"expected PROVIDER=URL, got {_short(repr(part))}")
        result[name.strip()] = value.strip()
    return MappingProxyType(result)


@dataclass(frozen=True, slots=True)
class MockConfig:
    """The mock's settings. Build with keyword arguments, :func:`config_from_env` or the CLI."""

    host: str = field(
        default="127.0.0.1", metadata=_opt("interface to bind (loopback only by default)")
    )
    port: int = field(default=8080, metadata=_opt("TCP port; 0 picks a free one"))
    tls_port: int | None = field(
        default=None,
        metadata=_opt(
            "also serve over HTTPS on this port (0 picks a free one), with a certificate from "
            "a test CA the mock creates (trustme); the banner prints the CA file and the "
            "SSL_CERT_FILE, FAL_QUEUE_RUN_HOST and FAL_RUN_HOST lines for fal-client",
            _optional_int,
            "none",
        ),
    )
    store: str = field(
        default="memory",
        metadata=_opt(
            "where the state lives: 'memory' (this process) or a shared Redis, "
            "'redis://[[user]:password@]host[:port][/db]' (or rediss:// for TLS, "
            "unix:///path/redis.sock[?db=N]); required by --processes above 1 and by "
            "replicas behind a load balancer"
        ),
    )
    processes: int = field(
        default=1,
        metadata=_opt(
            f"worker processes serving one port (SO_REUSEPORT), 1 to {MAX_PROCESSES}; "
            "more than 1 needs a shared --store"
        ),
    )
    seed: int = field(default=0, metadata=_opt("seed of every random choice (ids, delays, images)"))
    time_scale: float = field(
        default=1.0,
        metadata=_opt("virtual seconds per wall second; 0 freezes the clock (tests advance it)"),
    )
    workers: int = field(default=4, metadata=_opt("simulated GPU workers per provider"))
    queue_seconds: float = field(
        default=1.0, metadata=_opt("dispatch delay before an idle worker takes a job")
    )
    processing_seconds: Mapping[str, float] = field(
        default_factory=dict,
        metadata=_opt(
            "generation time per model, e.g. 'segmind/nano-banana=5,seaart/*=10,*=1'",
            parse_float_map,
            "each model's documented typical time",
        ),
    )
    processing_jitter: float = field(
        default=0.1, metadata=_opt("lognormal sigma of the generation time (0: exact)")
    )
    retention_seconds: Mapping[str, float] = field(
        default_factory=dict,
        metadata=_opt(
            "how long jobs and images live after submission, per provider or '*', "
            "e.g. 'seaart=600'",
            parse_float_map,
            "each provider's lifecycle.json (Segmind's 3600 s is documented)",
        ),
    )
    api_keys: frozenset[str] = field(
        default_factory=frozenset,
        metadata=_opt("comma-separated accepted API keys", parse_keys, "any non-empty key"),
    )
    max_body_bytes: int = field(default=256 * 1024, metadata=_opt("largest request body accepted"))
    max_jobs: int = field(
        default=100_000, metadata=_opt("jobs kept in memory; the oldest go first")
    )
    # A job keeps its prompt and a few numbers, not its body (about 1 KiB plus the prompt):
    # 256 MiB holds the 100,000 jobs of ``max_jobs`` with long prompts, and stops 20,000-
    # character prompts from growing the store past it.
    max_job_bytes: int = field(
        default=256 * 1024 * 1024,
        metadata=_opt(
            "memory the kept jobs may hold (their prompts and bookkeeping); the oldest go first"
        ),
    )
    image_cache_bytes: int = field(
        default=256 * 1024 * 1024, metadata=_opt("memory for rendered images (LRU)")
    )
    notional_credits: float = field(
        default=1000.0,
        metadata=_opt("balance reported in Segmind's x-remaining-credits (reported, not enforced)"),
    )
    journal_size: int = field(default=10_000, metadata=_opt("requests kept in the journal"))
    max_tenants: int = field(
        default=1000,
        metadata=_opt(
            "tenants kept, each named by a /t/{tenant}/ prefix or an X-Mock-Tenant header "
            "(the unnamed one aside); one more evicts the one used least recently"
        ),
    )
    tenant_idle_seconds: float = field(
        default=3600.0,
        metadata=_opt("wall seconds a tenant may go unused before it is evicted (forgotten)"),
    )
    max_header_bytes: int = field(
        default=8190, metadata=_opt("longest request line and header field accepted")
    )
    header_timeout: float = field(
        default=10.0,
        metadata=_opt(
            "seconds a client has, from connecting or from the first byte of a request, to "
            "send all of its headers; then the connection is closed (slow-header clients)"
        ),
    )
    body_timeout: float = field(
        default=30.0,
        metadata=_opt(
            "seconds a client has, from the end of the headers, to send the whole body "
            "(the largest body at 10 KB/s fits); then it is refused and the connection closed"
        ),
    )
    keepalive_timeout: float = field(
        default=15.0,
        metadata=_opt("seconds an idle keep-alive connection stays open between requests"),
    )
    max_connections: int = field(
        default=512,
        metadata=_opt(
            "client connections served at once (kept below the open-file limit); one more "
            "is answered 503 with Retry-After and closed"
        ),
    )
    control_open: bool = field(
        default=False,
        metadata=_opt("let non-loopback clients use the control plane (pair with a token)"),
    )
    control_token: str | None = field(
        default=None,
        metadata=_opt("require this token in X-Mock-Token on the control plane", _optional),
    )
    control_hosts: frozenset[str] = field(
        default_factory=frozenset,
        metadata=_opt(
            "extra Host names the control plane answers (comma-separated; '*.domain' for its "
            "subdomains, '*' for any) besides loopback names, IP literals and --host: a guard "
            "against DNS rebinding",
            parse_keys,
        ),
    )
    scenario: str | None = field(
        default=None,
        metadata=_opt(
            "a YAML or JSON scenario file loaded at start-up, or the name of one that ships "
            "with the package (flaky-segmind, out-of-credits, slow-queue)",
            _optional,
        ),
    )
    self_check: bool = field(
        default=False,
        metadata=_opt("validate every response against its schema; a violation answers 500"),
    )
    proxy: Mapping[str, str] = field(
        default_factory=dict,
        metadata=_opt(
            "forward these providers to a live origin and validate the traffic, e.g. "
            "'segmind=https://api.segmind.com' (the others are simulated)",
            parse_url_map,
        ),
    )
    proxy_timeout: float = field(
        default=120.0, metadata=_opt("seconds a proxied request may take upstream")
    )
    proxy_max_response_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata=_opt("largest upstream answer the proxy relays (larger ones answer 502)"),
    )
    record_dir: str | None = field(
        default=None,
        metadata=_opt(
            "append each proxied exchange (keys redacted) to DIR/<provider>.jsonl and write "
            "the drift report there on shutdown",
            _optional,
        ),
    )
    replay_dir: str | None = field(
        default=None,
        metadata=_opt(
            "answer providers that have DIR/<provider>.jsonl from the recording", _optional
        ),
    )

    def __post_init__(self) -> None:
        self._check()  # on the values as given: "secret" is not a list of keys
        for name in ("processing_seconds", "retention_seconds", "proxy"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        for name in ("api_keys", "control_hosts"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        for f in dataclasses.fields(self):  # 4.0 is a valid integer in JSON: keep it an int
            if f.type == "int" and isinstance(getattr(self, f.name), float):
                object.__setattr__(self, f.name, int(getattr(self, f.name)))

    def _check(self) -> None:
        """Validate every setting against schemas/mock/settings.json (the one schema that
        flags, environment, keyword arguments, scenarios and resets share), plus finiteness
        and the checks a schema cannot express."""
        from nanobanana_mock import (
            schemas,  # data only; imported here so that config stays free of our imports
        )

        from .names import unknown  # reads only the schemas

        problems = [f"{name}: must be a finite number" for name in _not_finite(self)]
        view = self._json_view()
        for error in sorted(schemas.validator("mock", "settings").iter_errors(view), key=str):
            where = ".".join(str(p) for p in error.absolute_path) or "settings"
            # never echo a key, nor a store URL's password
            if error.absolute_path and error.absolute_path[0] in SECRETS | {"store"}:
                message = f"breaks the rule {error.validator} {error.validator_value}"
            elif len(error.absolute_path) > 1 and error.absolute_path[0] == "proxy":
                message = f"breaks the rule {error.validator} {error.validator_value}"  # a URL
            elif _is_unknown_key(error):  # all allowed keys are named: not cut short
                problems.append(f"{where}: {unknown('key', error.instance, error.validator_value)}")
                continue
            else:
                message = error.message
            problems.append(f"{where}: {_short(message)}")
        if isinstance(self.proxy, Mapping):
            for provider, url in self.proxy.items():
                if isinstance(url, str) and not _is_origin(url):
                    problems.append(
                        f"proxy[{provider}] must be an http(s) origin only, not "
                        f"{_short(repr(_without_secrets(url)))}"
                    )
        if isinstance(self.store, str) and not any(p.startswith("store:") for p in problems):
            problems += store_problems(self.store)
        if (
            not problems
            and self.store == "memory"
            and isinstance(self.processes, int)
            and self.processes > 1
        ):
            problems.append(
                f"processes: {self.processes} processes need a shared store (--store "
                "redis://host:port/db): with --store memory each process would keep its own "
                "jobs, clock and faults, and a job submitted to one would be unknown to another"
            )
        if not problems and self.tls_port is not None and self.processes != 1:
            problems.append("tls_port: serves one process only, not --processes above 1")
        if problems:
            raise ConfigError("; ".join(problems[:MAX_PROBLEMS]))

    def _json_view(self) -> dict[str, Any]:
        """The settings as the JSON the schema describes (sets as sorted lists, mappings as
        objects); a value of the wrong kind is left as it is, for the schema to refuse."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, set | frozenset | list | tuple):
                value = sorted(value, key=str)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out

    def server_limits(self) -> dict[str, int]:
        """aiohttp's parser limits (AppRunner keyword arguments): header lines and fields."""
        return {"max_line_size": self.max_header_bytes, "max_field_size": self.max_header_bytes}

    def public(self) -> dict[str, Any]:
        """The settings as JSON, with secrets left out (keys are counted, not shown)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "api_keys":
                value = len(value)
            elif f.name == "control_token":
                value = value is not None
            elif f.name == "store":
                value = redacted_store(value)
            elif isinstance(value, frozenset):
                value = sorted(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out

    def processing_for(self, provider: str, model: str, typical: float) -> float:
        """The mean generation time of a model: an override, a provider wildcard, or typical."""
        table = self.processing_seconds
        for key in (f"{provider}/{model}", f"{provider}/*", "*"):
            if key in table:
                return table[key]
        return typical

    def retention_for(self, provider: str, documented: float) -> float:
        """How long a provider keeps jobs: an override, or the lifecycle's documented value."""
        return self.retention_seconds.get(provider, self.retention_seconds.get("*", documented))


SECRETS = frozenset({"api_keys", "control_token"})  # settings whose values no error repeats
MAX_PROBLEMS = 5  # problems named in one ConfigError: one line, still readable


def _is_unknown_key(error: Any) -> bool:
    """A key of a map setting (``processing_seconds``, ``retention_seconds``, ``proxy``)
    that names no provider or model: its ``propertyNames`` enum refused it."""
    return error.validator == "enum" and "propertyNames" in error.schema_path


def _not_finite(config: MockConfig) -> list[str]:
    """The numeric settings (mapping values included) that are NaN or infinite."""
    bad = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        items = value.items() if isinstance(value, Mapping) else [(None, value)]
        for key, item in items:
            if isinstance(item, float) and not math.isfinite(item):
                bad.append(f.name if key is None else f"{f.name}.{key}")
    return bad


def _short(text: str, limit: int = 200) -> str:
    """A message cut to ``limit`` characters (a 10 MB value is not repeated in an error)."""
    text = " ".join(text.split())  # one line
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _without_secrets(url: str) -> str:
    """``url`` as an error may repeat it: whatever stands before an ``@`` (a user and
    password), and a query or fragment (where keys and tokens travel), as ``***``."""
    url = re.sub(r"[^/?#@]*@", "***@", url)
    for mark in "?#":
        head, sep, _ = url.partition(mark)
        url = head + sep + "***" if sep else url
    return url


def store_problems(url: str) -> list[str]:
    """What is wrong with a ``store`` setting (``[]``: nothing): ``memory``, or a Redis URL
    as redis-py reads it, with no option that would change how the mock talks to it. The URL
    is named redacted (no password)."""
    if url == "memory":
        return []
    shown = _short(repr(redacted_store(url)))
    expected = (
        "expected 'memory', redis://[[user]:password@]host[:port][/db], rediss://... (TLS) "
        "or unix:///path/to/redis.sock[?db=N]"
    )
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError as exc:
        return [f"store: {shown} is not a valid URL ({_short(str(exc), 80)}); {expected}"]
    if parts.scheme not in STORE_SCHEMES:
        return [f"store: {shown} has no scheme the store knows; {expected}"]
    if parts.fragment:
        return [f"store: {shown} may not have a fragment (#...); {expected}"]
    if parts.scheme == "unix":
        if not parts.path or parts.netloc.rpartition("@")[2]:
            return [f"store: {shown} names no socket path (unix:///path/to/redis.sock)"]
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        if set(query) - {"db"} or len(query.get("db", [])) > 1:
            return [f"store: {shown}: a unix:// URL takes only ?db=N"]
        db = query.get("db", ["0"])[0]
    else:
        if not parts.hostname:
            return [f"store: {shown} names no host; {expected}"]
        if port == 0:
            return [f"store: {shown}: port 0 is no Redis port"]
        if parts.query:
            return [f"store: {shown} may not have a query (?...); {expected}"]
        db = parts.path.strip("/") or "0"
    if not (db.isascii() and db.isdigit() and len(db) <= 5 and int(db) <= MAX_STORE_DB):
        return [f"store: {shown}: the database must be a number from 0 to {MAX_STORE_DB}"]
    return []


def redacted_store(url: str) -> str:
    """A ``store`` URL as it may be shown (banner, logs, health, settings): its password,
    if any, as ``***`` (``redis://:***@host:6379/0``); the user name stays."""
    head, sep, rest = url.partition("://")
    if not sep:
        return _without_secrets(url) if "@" in url else url
    rest, hashmark, _ = rest.partition("#")
    rest, mark, query = rest.partition("?")
    tail = ""
    if mark:  # only a database number is shown: other options may hold a password
        kept = [
            q if q.startswith("db=") else q.partition("=")[0] + "=***" for q in query.split("&")
        ]
        tail = "?" + "&".join(kept)
    tail += "#***" if hashmark else ""
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        return f"{head}://{rest}{tail}"
    user, colon, _ = userinfo.partition(":")  # a lone name may be a password written alone
    return f"{head}://{user + ':***' if colon else '***'}@{hostpart}{tail}"


def _is_origin(url: str) -> bool:
    """``scheme://host[:port]``, with http or https and nothing after it."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and parts.path in ("", "/")
        and not parts.query
        and not parts.fragment
    )


_SCALARS: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def parse_value(f: dataclasses.Field[Any], text: str) -> Any:
    """Parse one setting from its textual form (flag or environment variable)."""
    parser = f.metadata.get("parse")
    if parser is not None:
        return parser(text)
    kind = _SCALARS[str(f.type)]
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{f.name}: {_short(repr(text))} is not a boolean")
    try:
        if kind is not str and not text.isascii():  # int("\u0661") is 1: ASCII only
            raise ValueError(text)
        return kind(text)
    except ValueError:
        raise ConfigError(
            f"{f.name}: {_short(repr(text))} is not a valid {kind.__name__}"
        ) from None


def config_from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> MockConfig:
    """Build a config from ``MOCK_*`` environment variables, then keyword overrides."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in dataclasses.fields(MockConfig):
        name = env_name(f.name)
        if name in environ:
            values[f.name] = parse_value(f, environ[name])
    values.update(overrides)
    return MockConfig(**values)
