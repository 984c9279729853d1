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
from collections.abc import Sequence

from aiohttp import web

from .app import base_urls, create_app
from .config import ConfigError, MockConfig, config_from_env, env_name, parse_value
from .scenario import ScenarioError
from .server import serve_app

__all__ = ["build_parser", "main", "parse_config"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nanobanana-mock",
        description="Contract-testing mock of the Nano Banana APIs of Segmind, SeaArt and Pixazo.",
    )
    defaults = MockConfig()
    for f in dataclasses.fields(MockConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        shown = ",".join(sorted(default)) if isinstance(default, frozenset) else default
        help_text = f"{f.metadata['help']} [env {env_name(f.name)}; default {shown or 'none'}]"
        if f.type == "bool":
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            parser.add_argument(
                flag, dest=f.name, default=None, metavar=f.name.upper(), help=help_text
            )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser


def parse_config(argv: Sequence[str] | None = None) -> tuple[MockConfig, argparse.Namespace]:
    args = build_parser().parse_args(argv)
    overrides = {}
    for f in dataclasses.fields(MockConfig):
        value = getattr(args, f.name)
        if value is not None:
            overrides[f.name] = value if isinstance(value, bool) else parse_value(f, value)
    level = args.log_level.strip().upper()
    if level not in logging.getLevelNamesMapping():
        names = ", ".join(sorted(logging.getLevelNamesMapping()))
        raise ConfigError(f"log level: {args.log_level[:40]!r} is not one of {names}")
    args.log_level = level
    return config_from_env(os.environ, **overrides), args


def banner(config: MockConfig, port: int) -> str:
    base = f"http://{config.host}:{port}"
    urls = base_urls(base)
    lines = [
        f"nanobanana-mock serving on {base} (seed {config.seed}, time scale {config.time_scale}x)",
        f"  Segmind  base URL {urls['segmind']}",
        f'           (SDK: SegmindClient(base_url="{urls["segmind"]}"))',
        f"  SeaArt   base URL {urls['seaart']}",
        f"  Pixazo   origin   {urls['pixazo']}",
        "  keys: "
        + ("any non-empty key" if not config.api_keys else f"{len(config.api_keys)} configured"),
        f"  control  {base}/_mock/ ({_control_exposure(config)})",
        "Try:",
        f"  curl -s -X POST {base}/v2/nano-banana -H 'x-api-key: test' "
        "-H 'Content-Type: application/json' -d '{\"prompt\": \"Dancing Banana\"}'",
    ]
    return "\n".join(lines)


def _control_exposure(config: MockConfig) -> str:
    if not config.control_open:
        return "loopback clients only"
    return "open to every client, " + ("token required" if config.control_token else "NO token")


async def serve(app: web.Application, config: MockConfig) -> None:
    served = await serve_app(app, config)
    print(banner(config, served.port), flush=True)
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError):  # not on Windows: Ctrl-C still works there
        # SIGTERM (docker stop, CI, a supervisor) shuts down as cleanly as Ctrl-C does: the
        # image renderer processes go with the server instead of being orphaned
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await served.close()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config, args = parse_config(argv)
        app = create_app(config)  # loads config.scenario, if any
    except ConfigError as exc:
        print(f"nanobanana-mock: {exc}", file=sys.stderr)
        return 2
    except ScenarioError as exc:
        print(f"nanobanana-mock: invalid scenario\n{exc}", file=sys.stderr)
        return 2
    # A long-lived store of jobs makes the default young-generation collections rescan it too
    # often (a p99 of 70 ms under load, BENCHMARKS.md). The standalone server collects less
    # often; a library or a test process keeps Python's defaults.
    gc.set_threshold(50_000, 20, 100)
    # What start-up made (modules, schemas, compiled validators, the app: ~80,000 objects)
    # lives as long as the process: out of every future collection's scan.
    gc.freeze()
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
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
