"""Where a provider's operation is sent: the mock's one origin, or the provider's real hosts.

fal serves the same ``POST /{owner}/{alias}`` on two real hosts (the queue at
``https://queue.fal.run``, the synchronous form at ``https://fal.run``). The mock has one
origin, so its ``api.json`` paths put each surface under a prefix (``/fal/queue``,
``/fal/run``), and ``api.json`` ``hosts`` says which real host each prefix stands for. A base
URL (the client's ``base_url=`` or ``<PROVIDER>_BASE_URL``, the suite's ``--base-url``, the
proxy's upstream) is one of three forms:

- **a real host** (its origin is one of ``hosts``'s): the real layout. A path under a prefix
  goes to that prefix's host, without the prefix: ``/fal/queue/fal-ai/nano-banana`` is sent to
  ``https://queue.fal.run/fal-ai/nano-banana``, whichever real host the base URL names.
- **a host map** ``name=URL[,name=URL]`` (``queue.fal.run=http://127.0.0.1:9001``): the real
  layout, with the named real hosts served elsewhere (a gateway, a recording proxy, a
  stand-in); a real host it does not name stays the real one.
- **anything else** (the mock): the path as ``api.json`` gives it, on that origin. Nothing
  changes for a provider without ``hosts``.

Pure: no I/O. A host map that is not one raises :class:`ValueError`, whose text names the
problem (the client turns it into its ``ConfigurationError``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["is_host_map", "layout", "parse_host_map", "rebase", "to_mock", "url"]

SCHEMES = ("http://", "https://")
SHOWN = 120  # the most of a host map an error quotes


def _origin(text: str) -> str:
    parts = urlsplit(text)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _real(api: Mapping[str, Any]) -> dict[str, str]:
    """Mock path prefix -> real host (``api.json`` ``hosts``; empty when it has none)."""
    return dict(api.get("hosts", {}))


def is_host_map(base: str) -> bool:
    """Is ``base`` written as a host map (``name=URL,...``) rather than as a URL?"""
    return "=" in base and not base.lower().startswith(SCHEMES)


def parse_host_map(api: Mapping[str, Any], text: str) -> dict[str, str]:
    """The real hosts with those ``text`` names replaced: mock path prefix -> host."""
    real = _real(api)
    names = {urlsplit(host).hostname: prefix for prefix, host in real.items()}
    if not names:
        raise ValueError(f"a host map replaces real hosts, and {api['provider']} has none")
    hosts, seen = dict(real), set()
    shown = repr(text[:SHOWN]) + ("..." if len(text) > SHOWN else "")  # an error's text: bounded
    for pair in text.split(","):  # ends by the pair after the last real host at the latest
        name, _, where = (piece.strip() for piece in pair.partition("="))
        if name not in names:
            known = ", ".join(str(n) for n in names)
            raise ValueError(
                f"host map {shown}: {name[:SHOWN]!r} is no real host; they are: {known}"
            )
        if name in seen:
            raise ValueError(f"host map {shown}: {name} is given twice")
        if not where.lower().startswith(SCHEMES) or not urlsplit(where).hostname:
            raise ValueError(
                f"host map {shown}: {name}'s URL must start with http(s):// and name a host"
            )
        seen.add(name)
        hosts[names[name]] = where.rstrip("/")
    return hosts


def layout(api: Mapping[str, Any], base: str) -> dict[str, str] | None:
    """Mock path prefix -> host for the real layout, or None for the mock's layout."""
    if is_host_map(base):
        return parse_host_map(api, base)
    real = _real(api)
    return real if _origin(base) in {_origin(host) for host in real.values()} else None


def url(api: Mapping[str, Any], base: str, path: str) -> str:
    """The URL for ``path`` (an ``api.json`` path, filled in; a query may follow) on ``base``."""
    hosts = layout(api, base)
    if hosts is None:
        return base + path
    for prefix, host in hosts.items():
        if path == prefix or path.startswith((prefix + "/", prefix + "?")):
            return host + path[len(prefix) :]
    # a path under no prefix: on the real host the base URL names, else the first host
    return (next(iter(hosts.values())) if is_host_map(base) else base) + path


def to_mock(api: Mapping[str, Any], text: str, origin: str) -> str | None:
    """A URL on one of the real hosts, moved onto the mock at ``origin`` under the prefix its
    host stands for (``https://queue.fal.run/x`` -> ``origin/fal/queue/x``); None for any
    other text."""
    path = _mock_path(_real(api), text)
    return None if path is None else origin + path


def rebase(api: Mapping[str, Any], text: str, old: str, new: str) -> str:
    """``text``, a URL reached through base URL ``old``, reached through ``new`` instead (a
    job submitted live and read on the mock: ``https://queue.fal.run/x`` ->
    ``http://127.0.0.1:8080/fal/queue/x``); any other text as it is."""
    hosts = layout(api, old)
    path = _mock_path(hosts, text) if hosts is not None else None
    if path is None and (text == old or text.startswith((old + "/", old + "?"))):
        path = text[len(old) :]
    return text if path is None else url(api, new, path)


def _mock_path(hosts: Mapping[str, str], text: str) -> str | None:
    """The mock's path (with its prefix) of a URL on one of ``hosts``; None if on none."""
    for prefix, host in hosts.items():
        if text == host or text.startswith((host + "/", host + "?")):
            return prefix + text[len(host) :]
    return None
