"""Fuzz the mock with schemathesis, from the OpenAPI documents it builds from its contracts.

    python fuzz/run.py [--max-examples N] [--seed S] [--phases ...] [--provider P ...]
                       [--distinct]

Starts a mock on a free loopback port (keys restricted, so authentication checks mean
something; its own self-check on, so any answer that breaks its contract is a 500 that the
not_a_server_error check reports), then runs `schemathesis run` against each provider's
document with every check, seeded. Exits non-zero if any run failed or the mock recorded a
contract violation.

``--distinct`` (the bounded run of ``make test``) fuzzes one operation of each kind: of the
operations with the same method, request and response schemas, and path once its first
segment and model are set aside, the first (by operation id). Gemini's /v1/ twins of its
/v1beta/ routes, the model ids that share a request schema (the ``-preview`` aliases) and a
job's routes repeated under each model's path (fal's and SeaArt's status, result, cancel) run
the same handler on the same schemas; fuzzing Gemini's 32 took three quarters of the bounded
run. ``make fuzz`` fuzzes them all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from nanobanana_mock import schemas  # noqa: E402
from nanobanana_mock.client.providers import ADAPTERS, adapter  # noqa: E402
from nanobanana_mock.config import MockConfig  # noqa: E402
from nanobanana_mock.control.pytest_plugin import MockServer  # noqa: E402
from nanobanana_mock.openapi import openapi_document  # noqa: E402

KEY = "fuzz-key-0123456789"
AUTH = {  # the auth header alone, as `-H "name: value"`; schemathesis sets Content-Type
    p: next(f"{k}: {v}" for k, v in adapter(p).headers(KEY).items() if k != "Content-Type")
    for p in ADAPTERS  # every provider: a contract folder
}


def distinct(provider: str) -> list[str]:
    """The operation ids of one operation of each kind in ``provider``'s document (see the
    module docstring), sorted."""
    models = schemas.load(provider, "api")["models"]
    kept: dict[tuple[str, str, str, str], str] = {}
    operations = [
        (operation["operationId"], method, path, operation)
        for path, methods in openapi_document(provider)["paths"].items()
        for method, operation in methods.items()
    ]
    for operation_id, method, path, operation in sorted(operations, key=lambda o: o[0]):
        model = operation_id.partition(".")[2]
        shape = path.replace(model, "{model}") if model else path
        body = json.dumps([operation.get("requestBody"), operation["responses"]], sort_keys=True)
        # a body is checked by its model's own schema too (Gemini's narrow the wire form)
        narrowed = models[model]["request"] if model and "requestBody" in operation else ""
        kept.setdefault((method, shape.split("/", 2)[-1], body, narrowed), operation_id)
    return sorted(kept.values())


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", action="append", choices=sorted(AUTH))
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    parser.add_argument("--max-time", type=int, default=None, help="seconds per provider")
    parser.add_argument(
        "--distinct", action="store_true", help="one operation of each kind (see above)"
    )
    args = parser.parse_args(argv)
    config = MockConfig(
        port=0,
        time_scale=1000.0,
        processing_jitter=0.0,
        seed=args.seed,
        api_keys=frozenset({KEY}),
        self_check=True,
    )
    failures = []
    with MockServer(config) as server:
        for provider in args.provider or sorted(AUTH):
            command = [
                str(Path(sys.executable).parent / "schemathesis"),
                "--no-color",
                "--config-file",
                str(HERE / "schemathesis.toml"),
                "run",
                f"{server.base_url}/_mock/openapi/{provider}.json",
                "--url",
                server.base_url,
                "-H",
                AUTH[provider],
                "--seed",
                str(args.seed),
                "--max-examples",
                str(args.max_examples),
                "--phases",
                args.phases,
                "--generation-database",
                "none",
                "--workers",
                "1",
            ]
            if args.max_time:
                command += ["--max-time", str(args.max_time)]
            if args.distinct:
                for operation_id in distinct(provider):
                    command += ["--include-operation-id", operation_id]
            print(f"== schemathesis: {provider}", flush=True)
            env = {**os.environ, "PYTHONPATH": str(HERE.parent)}  # for the hooks module
            if subprocess.run(command, check=False, cwd=HERE.parent, env=env).returncode != 0:
                failures.append(provider)
        with urllib.request.urlopen(f"{server.base_url}/_mock/health", timeout=10) as resp:
            violations = json.load(resp)["violations"]
    if violations:
        print("the mock broke its own contract:", *violations, sep="\n  ")
    if failures:
        print("schemathesis failed for:", ", ".join(failures))
    return 1 if failures or violations else 0


if __name__ == "__main__":
    raise SystemExit(run())
