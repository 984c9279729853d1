"""``python -m nanobanana_mock`` / ``nanobanana-mock``: serve the mock from the command line.

Every flag is generated from :class:`~nanobanana_mock.config.MockConfig`, and every flag has a
``MOCK_*`` environment variable (flags win).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from aiohttp import web

from nanobanana_mock import schemas

from .app import base_urls, create_app
from .config import (
    ENV_PREFIX,
    SECRETS,
    ConfigError,
    MockConfig,
    config_from_env,
    env_name,
    parse_value,
    redacted_store,
)
from .control.api import BASE_SCENARIO
from .names import PROVIDERS, did_you_mean
from .pipeline.serve import SOURCES
from .processes import hold_port, supervise, watch_parent
from .scenario import ScenarioError, load_scenario
from .server import serve_app
from .state import STATE
from .tls import fal_environment

__all__ = ["build_parser", "main", "parse_config"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nanobanana-mock",
        description="Contract-testing mock of the Nano Banana APIs of "
        + ", ".join(schemas.load(p, "api")["title"] for p in PROVIDERS)
        + ".",
    )
    for f in dataclasses.fields(MockConfig):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} [env {env_name(f.name)}; default {default_text(f)}]"
        if f.type == "bool":
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            parser.add_argument(
                flag, dest=f.name, default=None, metavar=f.name.upper(), help=help_text
            )
    parser.add_argument("--log-level", default="INFO", help="logging level [default INFO]")
    return parser


def default_text(f: dataclasses.Field[Any]) -> str:
    """A setting's default as its flag would be written (``--seed 0``), or what an empty
    default means (``--api-keys``: any non-empty key); bools are on or off."""
    value = getattr(DEFAULTS, f.name)
    if f.metadata.get("default_text"):
        return str(f.metadata["default_text"])
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return _shown(value) or "none"


DEFAULTS = MockConfig()


def parse_config(argv: Sequence[str] | None = None) -> tuple[MockConfig, argparse.Namespace]:
    args = build_parser().parse_args(argv)
    overrides = {}
    for f in dataclasses.fields(MockConfig):
        value = getattr(args, f.name)
        if value is not None:
            overrides[f.name] = value if isinstance(value, bool) else parse_value(f, value)
    level = args.log_level.strip().upper()
    levels = sorted(logging.getLevelNamesMapping())
    if level not in levels:
        close = did_you_mean(level, levels)
        raise ConfigError(
            f"log level: {args.log_level[:40]!r} is not one of {', '.join(levels)}{close}"
        )
    args.log_level = level
    return config_from_env(os.environ, **overrides), args


def given(args: argparse.Namespace, environ: Mapping[str, str]) -> set[str]:
    """The settings given as a flag or a ``MOCK_*`` variable, even at their default value."""
    names = (f.name for f in dataclasses.fields(MockConfig))
    return {n for n in names if getattr(args, n) is not None or env_name(n) in environ}


def build_app(config: MockConfig, args: argparse.Namespace) -> web.Application:
    """The app, with a scenario's settings for what neither a flag nor a variable gave: a
    ``--seed 0`` or ``--time-scale 1`` equal to the default still wins over the file."""
    if not config.scenario:
        return create_app(config)
    scenario = load_scenario(config.scenario)
    explicit = given(args, os.environ)
    settings = {k: v for k, v in (scenario.get("settings") or {}).items() if k not in explicit}
    return create_app(config, scenario={**scenario, "settings": settings})


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning for each ``MOCK_*`` variable that is no setting (``MOCK_WROKERS``): it is
    ignored, which a typo should not be silently."""
    known = [env_name(f.name) for f in dataclasses.fields(MockConfig)]
    return [
        f"warning: {name[:60]} is not a setting, ignored{did_you_mean(name, known)}"
        for name in sorted(environ)
        if name.startswith(ENV_PREFIX) and name not in known
    ]


def banner(
    app: web.Application,
    port: int,
    pids: Sequence[int] = (),
    tls: tuple[int, Path] | None = None,
) -> str:
    """What the server says on start: where each provider is and how it is answered, the
    effective settings (a scenario's included), where the state lives and which processes
    serve (``pids``: the workers of ``--processes``), the HTTPS port and its test CA file
    (``tls``), and who must show a key or token. No key, token or store password is ever
    printed."""
    config = app[STATE].config
    base = f"http://{config.host}:{port}"
    scenario = app[BASE_SCENARIO]
    lines = [
        f"nanobanana-mock serving on {base} (seed {config.seed}, time scale "
        f"{config.time_scale:g}x{', frozen' if config.time_scale == 0 else ''})",
        *(line for name, url in base_urls(base).items() for line in _where(app, name, url)),
        *_settings_lines(config, scenario),
        *_store_lines(config, pids),
        *_tls_lines(config.host, tls),
        "  keys     "
        + (
            "any non-empty key"
            if not config.api_keys
            else f"{len(config.api_keys)} accepted (--api-keys); any other gets the provider's 401"
        ),
        f"  control  {base}/_mock/ ({_control_exposure(config)})",
        f"  dashboard {base}/_mock/ui/",
        "Try:",
        f"  curl -s -X POST {base}/v2/nano-banana -H 'x-api-key: "
        f"{'YOUR_KEY' if config.api_keys else 'test'}' "
        "-H 'Content-Type: application/json' -d '{\"prompt\": \"Dancing Banana\"}'",
    ]
    return "\n".join(lines)


def _where(app: web.Application, provider: str, url: str) -> list[str]:
    """A provider's banner lines: its title, base URL (or origin, when the base URL is the
    origin) and how it is answered; then how its SDK is pointed here, if ``api.json`` says."""
    api = schemas.load(provider, "api")
    label = "base URL" if api["base_url_path"] else "origin"
    lines = [f"  {api['title']:<8} {label:<8} {url}  {_mode(app, provider)}"]
    if "sdk_example" in api:
        lines.append(f"           (SDK: {api['sdk_example'].format(base_url=url)})")
    return lines


def _mode(app: web.Application, provider: str) -> str:
    """simulated, or what the source answering it says (proxied to ..., replayed from ...)."""
    for source in app[SOURCES]:
        if source.serves(provider):
            return source.describe(provider)
    return "simulated"


SHOWN_FIRST = frozenset({"host", "port", "seed", "time_scale"})  # the banner's first line
# said on lines of their own (the providers, the scenario, the control plane), or secret
NEVER_SHOWN = SECRETS | {"proxy", "record_dir", "replay_dir", "scenario", "control_open"}
NEVER_SHOWN |= {"store", "processes"}  # said on lines of their own, the store redacted


def _settings_lines(config: MockConfig, scenario: Mapping[str, Any]) -> list[str]:
    """The scenario loaded, and every setting that differs from its default."""
    lines = []
    if config.scenario:
        parts = [_count(len(scenario.get("faults", [])), "fault rule")]
        parts += ["credits"] if scenario.get("credits") else []
        parts += [_count(len(scenario.get("rate_limits", [])), "rate limit")]
        lines.append(f"  scenario {config.scenario} ({', '.join(parts)})")
    changed = [
        _flag(f.name, getattr(config, f.name))
        for f in dataclasses.fields(MockConfig)
        if f.name not in SHOWN_FIRST | NEVER_SHOWN
        and getattr(config, f.name) != getattr(DEFAULTS, f.name)
    ]
    if changed:
        lines.append(f"  settings {', '.join(changed)}")
    return lines


def _tls_lines(host: str, tls: tuple[int, Path] | None) -> list[str]:
    """The HTTPS port, its test CA, and the environment that points fal-client here."""
    if tls is None:
        return []
    port, ca_file = tls
    api = schemas.load("fal", "api")
    run_path = api["operations"]["run"]["path"].split("/fal-ai/")[0]
    return [
        f"  https    https://{host}:{port} (certificate from a test CA: {ca_file})",
        "  fal-client, to reach this mock set:",
        "    " + fal_environment(host, port, api["base_url_path"], run_path, ca_file),
    ]


def _store_lines(config: MockConfig, pids: Sequence[int]) -> list[str]:
    """Where the state lives (a shared store, password hidden) and the processes sharing the
    port; nothing for the default, one process with its state in memory."""
    lines = []
    if config.store != "memory":
        lines.append(f"  store    {redacted_store(config.store)} (shared: state lives there)")
    if pids:
        lines.append(
            f"  processes {len(pids)} on one port (pids {', '.join(map(str, pids))}; "
            f"supervisor {os.getpid()} restarts any that dies)"
        )
    return lines


def _flag(name: str, value: Any) -> str:
    """A setting as the flag that gives it: ``--workers 1``, ``--self-check``."""
    flag = name.replace("_", "-")
    if isinstance(value, bool):
        return f"--{flag}" if value else f"--no-{flag}"
    return f"--{flag} {_shown(value)}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _shown(value: Any) -> str:
    """A setting's value as its flag takes it (``seaart=600,pixazo=900``, ``a,b``, ``0.1``)."""
    if isinstance(value, Mapping):
        return ",".join(f"{k}={_shown(v)}" for k, v in value.items())
    if isinstance(value, frozenset):
        return ",".join(sorted(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _control_exposure(config: MockConfig) -> str:
    who = "open to every client" if config.control_open else "loopback clients only"
    if config.control_token:
        return f"{who}; X-Mock-Token required"
    return f"{who}; no token" + (": set --control-token" if config.control_open else "")


async def serve(app: web.Application, config: MockConfig, pipe: Connection | None = None) -> None:
    """Serve until SIGTERM (or Ctrl-C). Alone, print the banner; as one of ``--processes``
    workers, tell the parent through ``pipe`` that it listens (the parent prints the banner),
    and stop when the parent is gone."""
    try:
        served = await serve_app(app, config, reuse_port=pipe is not None)
    except OSError as exc:
        if pipe is None:
            raise
        pipe.send(("failed", f"cannot serve on {config.host}:{config.port}: {exc}"))
        return
    stop = asyncio.Event()
    if pipe is None:
        tls = None if served.ca_file is None else (served.tls_port or 0, served.ca_file)
        print(banner(app, served.port, tls=tls), flush=True)
    else:
        pipe.send(("ready", os.getpid()))
        await watch_parent(pipe, stop)
    with contextlib.suppress(NotImplementedError):  # not on Windows: Ctrl-C still works there
        # SIGTERM (docker stop, CI, a supervisor) shuts down as cleanly as Ctrl-C does: the
        # image renderer processes go with the server instead of being orphaned
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await served.close()


def _prepare_process(
    log_level: str, pid_in_logs: bool
) -> Callable[[Coroutine[Any, Any, None]], None]:
    """What a serving process sets up before its event loop: the collector, the log format
    (with the pid when several processes share the log) and the loop runner (uvloop)."""
    # A long-lived store of jobs makes the default young-generation collections rescan it too
    # often (a p99 of 70 ms under load, BENCHMARKS.md). The standalone server collects less
    # often; a library or a test process keeps Python's defaults.
    gc.set_threshold(50_000, 20, 100)
    # What start-up made (modules, schemas, compiled validators, the app: ~80,000 objects)
    # lives as long as the process: out of every future collection's scan.
    gc.freeze()
    pid = " %(process)d" if pid_in_logs else ""
    logging.basicConfig(level=log_level, format=f"%(asctime)s{pid} %(name)s %(message)s")
    try:
        import uvloop

        return uvloop.run
    except ImportError:
        return asyncio.run


def run_worker(argv: list[str], port: int, pipe: Connection) -> None:
    """One of ``--processes`` workers (a spawned process): the same settings as the parent
    (its command line and environment) on the port the parent chose."""
    try:
        config, args = parse_config(argv)
        config = dataclasses.replace(config, port=port)
        app = build_app(config, args)
    except (ConfigError, ScenarioError) as exc:  # the parent checked them: a changed file
        pipe.send(("failed", f"worker {os.getpid()}: {exc}"))
        raise SystemExit(2) from None
    runner = _prepare_process(args.log_level, pid_in_logs=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the whole process group
        runner(serve(app, config, pipe))


def _serve_processes(
    app: web.Application, config: MockConfig, args: argparse.Namespace, argv: list[str]
) -> int:
    """``--processes N``: hold the port, start N workers on it, print one banner, supervise."""
    try:
        held, port = hold_port(config.host, config.port)
    except OSError as exc:
        print(
            f"nanobanana-mock: cannot serve on {config.host}:{config.port}: {exc}", file=sys.stderr
        )
        return 1
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(process)d %(name)s %(message)s")

    def announce(pids: list[int]) -> None:
        print(banner(app, port, pids), flush=True)

    with held:
        return supervise(run_worker, (argv, port), config.processes, announce)


def main(argv: Sequence[str] | None = None) -> int:
    for warning in unknown_variables(os.environ):
        print(f"nanobanana-mock: {warning}", file=sys.stderr)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        config, args = parse_config(argv)
        app = build_app(config, args)  # loads config.scenario, if any
    except ConfigError as exc:
        print(f"nanobanana-mock: {exc}", file=sys.stderr)
        return 2
    except ScenarioError as exc:
        print(f"nanobanana-mock: invalid scenario\n{exc}", file=sys.stderr)
        return 2
    if config.processes > 1:
        return _serve_processes(app, config, args, argv)
    runner = _prepare_process(args.log_level, pid_in_logs=False)
    try:
        runner(serve(app, config))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(
            f"nanobanana-mock: cannot serve on {config.host}:{config.port}: {exc}", file=sys.stderr
        )
        return 1
    return 0
