"""``nanobanana`` / ``python -m nanobanana_mock.client``: generate images from the command line.

    nanobanana generate --provider seaart --model nano_banana_pro --prompt "A red apple"
    nanobanana status  ./mmsu_x.job.json       # one status read of a saved job
    nanobanana wait    ./mmsu_x.job.json       # resume: wait, download, save
    nanobanana cancel  ./mmsu_x.job.json       # SeaArt only

``generate`` saves the job handle as soon as the job is accepted, in ``<out>/<id>.job.json``
(or ``--save-handle FILE``), so a paid job is never lost, whatever ends the run (a timeout,
Ctrl-C, a failure while polling or downloading): ``nanobanana wait <file>`` resumes it and
saves the images where the first run's ``--out`` pointed, which the file records. Each wait
before a retry (rate limited, refused, a 5xx) is one line on stderr. Every error maps to one
exit code (:data:`EXIT_CODES`); errors are one line on stderr, or one JSON object on stdout
with ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import mimetypes
import os
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final, TextIO

from nanobanana_mock import schemas
from nanobanana_mock.schemas import media

from .client import MAX_POLL_INTERVAL, POLL_BACKOFF, POLL_INTERVAL, Client
from .errors import (
    AuthenticationError,
    ConfigurationError,
    InsufficientCredits,
    InvalidRequest,
    JobCancelled,
    JobFailed,
    NotFound,
    NotSupported,
    RateLimited,
    ServerError,
    Timeout,
    TransportError,
)
from .handle_file import load_handle_file, save_handle_file
from .models import Image, JobHandle, JobStatus, Result, StatusReport
from .providers import ADAPTERS
from .transport import RetryNotice, RetryPolicy

__all__ = ["EXIT_CODES", "UsageError", "build_parser", "exit_code", "main"]

PROG = "nanobanana"


class UsageError(Exception):
    """Bad arguments, or a handle file that cannot be read."""


class Interrupted(Exception):
    """Ctrl-C while waiting (the job handle is saved)."""


# (code, meaning, the exceptions that give it). The --help epilog is built from this table.
EXIT_CODES: Final[tuple[tuple[int, str, tuple[type[BaseException], ...]], ...]] = (
    (0, "success", ()),
    (1, "unexpected error (including a contract violation under --strict)", ()),
    (2, "usage or configuration: bad arguments, no API key, unreadable handle file",
     (UsageError, ConfigurationError)),
    (3, "AuthenticationError: the key was refused", (AuthenticationError,)),
    (4, "InsufficientCredits", (InsufficientCredits,)),
    (5, "RateLimited (after the retries)", (RateLimited,)),
    (6, "InvalidRequest: the provider refused the request", (InvalidRequest,)),
    (7, "JobFailed: the job ended FAILED", (JobFailed,)),
    (8, "JobCancelled", (JobCancelled,)),
    (9, "NotFound: unknown or expired request id", (NotFound,)),
    (10, "Timeout: the job is still running; its handle is saved", (Timeout,)),
    (11, "ServerError (5xx, after the retries)", (ServerError,)),
    (12, "TransportError: reset, refused, truncated or malformed answer", (TransportError,)),
    (13, "NotSupported: e.g. cancel on Segmind or Pixazo", (NotSupported,)),
    (130, "interrupted (Ctrl-C); the handle is saved", (Interrupted, KeyboardInterrupt)),
)  # fmt: skip
_CODE_OF: Final = {cls: code for code, _, classes in EXIT_CODES for cls in classes}
EXTENSIONS: Final = media.EXTENSIONS  # the contracts' (schemas/common.json)


def exit_code(exc: BaseException) -> int:
    """The exit code of an exception: that of its nearest class in :data:`EXIT_CODES`."""
    for cls in type(exc).__mro__:
        if cls in _CODE_OF:
            return _CODE_OF[cls]
    return 1


# -- the command line ---------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are raised (as UsageError), not printed and exited."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _epilog() -> str:
    lines = [f"  {code:>3}  {meaning}" for code, meaning, _ in EXIT_CODES]
    return "exit codes:\n" + "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``nanobanana`` and its sub-commands."""
    parser = _Parser(
        prog=PROG,
        description="Generate images with the Nano Banana APIs of "
        + ", ".join(schemas.load(p, "api")["title"] for p in ADAPTERS)
        + ".",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common, waiting = _common_options(), _wait_options()
    formatter = argparse.RawDescriptionHelpFormatter
    gen = commands.add_parser(
        "generate", parents=[common, waiting], help="submit a job, wait, save the images",
        epilog=_epilog(), formatter_class=formatter,
    )  # fmt: skip
    _generate_options(gen)
    for name, parents, text in (
        ("status", [common], "one status read of a saved job"),
        ("wait", [common, waiting], "resume a saved job: wait, download, save"),
        ("cancel", [common], f"cancel a saved job ({', '.join(_cancellable())})"),
    ):
        sub = commands.add_parser(
            name, parents=parents, help=text, epilog=_epilog(), formatter_class=formatter
        )
        sub.add_argument("handle_file", metavar="HANDLE_FILE", help="a saved job handle (JSON)")
    return parser


def _cancellable() -> list[str]:
    """The titles of the providers whose contract has a ``cancel`` operation."""
    apis = (schemas.load(p, "api") for p in ADAPTERS)
    return [api["title"] for api in apis if "cancel" in api["operations"]]


def _common_options() -> _Parser:
    options = _Parser(add_help=False)
    options.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    origins = ", ".join(f"{name} {adapter.default_base}" for name, adapter in ADAPTERS.items())
    keys = "; ".join(f"{name} ${' or $'.join(a.key_env)}" for name, a in ADAPTERS.items())
    options.add_argument(
        "--base-url",
        help="the provider's origin (default: the handle's, else $<PROVIDER>_BASE_URL, else "
        f"the public one: {origins}); fal also takes a host map, queue.fal.run=URL[,fal.run=URL]",
    )
    options.add_argument("--api-key", help=f"the API key (default: {keys})")
    options.add_argument(
        "--retries", type=_count, default=5, metavar="N",
        help="retries of a failed request after the first try (default 5; 0: none)",
    )  # fmt: skip
    options.add_argument(
        "--strict", action="store_true", help="fail on answers that break the contract"
    )
    return options


def _wait_options() -> _Parser:
    options = _Parser(add_help=False)
    options.add_argument(
        "--out", metavar="DIR",
        help='where images go (default: the folder the handle records, else ".")',
    )  # fmt: skip
    options.add_argument(
        "--timeout", type=_seconds, default=600.0, metavar="S",
        help="give up waiting after S seconds, saving the handle (default 600)",
    )  # fmt: skip
    options.add_argument(
        "--interval", type=_seconds, default=POLL_INTERVAL, metavar="S",
        help=f"first poll interval, growing x{POLL_BACKOFF:g} per poll (default {POLL_INTERVAL:g})",
    )  # fmt: skip
    options.add_argument(
        "--max-interval", type=_seconds, default=MAX_POLL_INTERVAL, metavar="S",
        help=f"longest poll interval (default {MAX_POLL_INTERVAL:g})",
    )  # fmt: skip
    options.add_argument(
        "--quiet", action="store_true", help="no progress (nor retry notices) on stderr"
    )
    return options


def _generate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", required=True, choices=sorted(ADAPTERS))
    parser.add_argument("--model", required=True, help="e.g. nano-banana-pro, nano_banana_pro")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--aspect-ratio", metavar="R", help="e.g. 16:9")
    parser.add_argument("--resolution", metavar="X", help="e.g. 1K, 2K, 4K")
    formats = sorted(set(EXTENSIONS.values()))  # jpg, png, webp
    parser.add_argument("--format", choices=formats, help="output format")
    parser.add_argument(
        "--image-url", action="append", default=[], metavar="URL",
        help="a reference image (repeatable)",
    )  # fmt: skip
    parser.add_argument("--num-images", type=_count, metavar="N")
    parser.add_argument(
        "--param", action="append", default=[], type=_param, metavar="KEY=VALUE",
        help="a provider field, VALUE as JSON if it parses (repeatable), e.g. seed=42",
    )  # fmt: skip
    parser.add_argument(
        "--save-handle",
        metavar="FILE",
        help="save the job handle here (default <out>/<id>.job.json)",
    )


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"not a number of seconds >= 0: {text!r}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a count >= 0: {text!r}")
    return value


def _param(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


# -- output ---------------------------------------------------------------------------------
class Progress:
    """Live progress on a stream: one line rewritten in place on a TTY, else one line per
    change of state (never one per poll)."""

    def __init__(
        self, stream: TextIO, provider: str, *, quiet: bool = False, started: float | None = None
    ) -> None:
        self.stream = stream
        self.provider = provider
        self.quiet = quiet
        self.tty = _isatty(stream)
        self.started = time.monotonic() if started is None else started
        self._last: tuple[JobStatus, str] | None = None
        self._open = False  # a TTY line is waiting for its newline

    def update(self, report: StatusReport) -> None:
        if self.quiet:
            return
        line = self.line(report)
        if self.tty:
            self.stream.write(f"\r{line}\x1b[K")
            self._open = True
        elif (report.status, report.raw_status) != self._last:
            self.stream.write(line + "\n")
        self._last = (report.status, report.raw_status)
        self.stream.flush()

    def notice(self, text: str) -> None:
        """One line of its own (a retry notice), after the progress line if one is open."""
        if self.quiet:
            return
        self.finish()
        self.stream.write(text + "\n")
        self.stream.flush()

    def retrying(self, notice: RetryNotice) -> None:
        self.notice(f"{PROG}: {notice}")

    def finish(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False

    def line(self, report: StatusReport) -> str:
        elapsed = time.monotonic() - self.started
        return f"{describe(self.provider, report)} {elapsed:.1f}s"


def describe(provider: str, report: StatusReport) -> str:
    """``[seaart] mmsu_x QUEUED/IN_QUEUE (position 2, eta 40s)``: the normalised state, the
    provider's own where it differs, and the queue position and ETA when known."""
    state = report.status.value
    if report.raw_status != state:
        state += f"/{report.raw_status}"
    extra = []
    if report.queue_position is not None and report.status is JobStatus.QUEUED:
        extra.append(f"position {report.queue_position}")
    if report.eta_seconds is not None and not report.status.terminal:
        extra.append(f"eta {report.eta_seconds:.0f}s")
    details = f" ({', '.join(extra)})" if extra else ""
    return f"[{provider}] {report.request_id} {state}{details}"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _emit(args: argparse.Namespace, text: str, data: dict[str, Any]) -> None:
    """The command's answer on stdout: ``text``, or ``data`` as one JSON object."""
    print(json.dumps(data) if args.json else text, file=sys.stdout, flush=True)


# -- running a command ------------------------------------------------------------------------
@dataclass
class Run:
    """One command's state that its error report needs."""

    args: argparse.Namespace
    started: float = field(default_factory=time.monotonic)
    handle_file: Path | None = None
    out: str = "."  # where the images go
    progress: Progress | None = None  # made with the client: retries print through it
    job: JobHandle | None = None  # the job the command works on, once it has one

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _client(run: Run, provider: str, base_url: str | None) -> Client:
    args = run.args
    quiet = getattr(args, "quiet", False)
    run.progress = Progress(sys.stderr, provider, quiet=quiet, started=run.started)
    return Client(
        provider,
        api_key=args.api_key,
        base_url=args.base_url or base_url,
        retry=RetryPolicy(attempts=args.retries + 1),
        strict="raise" if args.strict else False,
        poll_interval=getattr(args, "interval", POLL_INTERVAL),
        max_poll_interval=getattr(args, "max_interval", MAX_POLL_INTERVAL),
        on_retry=run.progress.retrying,
    )


def _load_handle(path: str) -> tuple[JobHandle, str | None]:
    """The handle in a file and the image folder it records, or a UsageError."""
    try:
        return load_handle_file(path)
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise UsageError(f"cannot read the handle file {path}: {exc}") from exc


def _out_folder(out: str) -> str:
    """Create the image folder before any job is paid for, or raise a UsageError; the
    folder's name comes back normalised (``./out`` is ``out``), as the summary prints it."""
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot create the output folder {out}: {exc}") from exc
    return os.path.normpath(out)


async def _generate(run: Run) -> int:
    args = run.args
    params = _generation_params(args)
    run.out = _out_folder(args.out or ".")
    async with _client(run, args.provider, None) as client:
        if "submit" not in client.adapter.api["operations"]:  # one blocking call (Gemini)
            result = await client.generate_sync(args.model, **params)
            run.job = result.handle
            _report(run, result, _save_images(result, run.out))
            return 0
        handle = await client.submit(args.model, **params)
        _keep(run, handle)
        return await _collect(run, client, handle)


def _generation_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {
        "prompt": args.prompt,
        "aspect_ratio": args.aspect_ratio,
        "resolution": args.resolution,
        "output_format": args.format,
        "image_urls": args.image_url or None,
        "num_images": args.num_images,
    }
    params.update(args.param)
    return {name: value for name, value in params.items() if value is not None}


async def _wait(run: Run) -> int:
    handle, recorded_out = _load_handle(run.args.handle_file)
    run.handle_file = Path(run.args.handle_file)
    run.out = _out_folder(run.args.out or recorded_out or ".")
    async with _client(run, handle.provider, handle.base_url) as client:
        return await _collect(run, client, handle)


async def _collect(run: Run, client: Client, handle: JobHandle) -> int:
    """Wait with progress, download and save; the handle is saved if this ends otherwise."""
    args = run.args
    run.job = handle
    progress = run.progress
    assert progress is not None  # made with the client
    try:
        try:
            result = await client.wait(handle, timeout=args.timeout, on_status=progress.update)
        finally:
            progress.finish()
        result = await client.download_all(result)
    except (JobFailed, NotFound):
        raise  # terminal, or gone: nothing left to resume
    except asyncio.CancelledError as exc:
        _keep(run, handle)
        raise Interrupted(f"interrupted while waiting for {handle.request_id}") from exc
    except BaseException:
        _keep(run, handle)
        raise
    _report(run, result, _save_images(result, run.out))
    return 0


def _keep(run: Run, handle: JobHandle) -> None:
    """Save the handle, with the image folder, to --save-handle or <out>/<id>.job.json
    (unless it is saved already, or resumed from a file)."""
    if run.handle_file is not None:
        return
    target = run.args.save_handle or Path(run.out) / f"{handle.request_id}.job.json"
    try:
        run.handle_file = save_handle_file(handle, target, run.out)
    except OSError as exc:  # never lose a paid job: show the handle instead
        text = json.dumps(handle.to_dict())
        print(f"{PROG}: cannot save the job handle ({exc}); it is: {text}", file=sys.stderr)


def _save_images(result: Result, out: str) -> list[str]:
    Path(out).mkdir(parents=True, exist_ok=True)
    paths = []
    for number, image in enumerate(result.images, start=1):
        path = os.path.join(out, f"{result.handle.request_id}_{number}.{_extension(image)}")
        image.save(path)
        paths.append(path)
    return paths


def _extension(image: Image) -> str:
    content_type = (image.content_type or "").split(";")[0].strip().lower()
    if content_type in EXTENSIONS:
        return EXTENSIONS[content_type]
    guessed = mimetypes.guess_type(image.url.split("?")[0])[0]
    return EXTENSIONS.get(guessed or "", "bin")


def _report(run: Run, result: Result, paths: list[str]) -> None:
    metrics = {k: v for k, v in asdict(result.metrics).items() if v is not None}
    elapsed = run.elapsed()
    data = {
        "status": JobStatus.SUCCEEDED.value,
        "provider": result.handle.provider,
        "model": result.handle.model,
        "request_id": result.handle.request_id,
        "images": [
            _image_json(image, path) for image, path in zip(result.images, paths, strict=True)
        ],
        "metrics": metrics,
        "elapsed_seconds": round(elapsed, 3),
        "handle": _handle_name(run),
    }
    text = _summary(result.images, paths, elapsed, metrics.get("cost"))
    if data["handle"] is not None:
        text += f"; job handle {data['handle']}"
    _emit(run.args, text, data)


def _handle_name(run: Run) -> str | None:
    return str(run.handle_file) if run.handle_file is not None else None


def _image_json(image: Image, path: str) -> dict[str, Any]:
    return {
        "path": path,
        "url": image.url,
        "width": image.width,
        "height": image.height,
        "content_type": image.content_type,
        "bytes": len(image.data or b""),
    }


def _summary(images: Sequence[Image], paths: list[str], elapsed: float, cost: Any) -> str:
    noun = "image" if len(images) == 1 else "images"
    kinds = dict.fromkeys(f"{i.width}x{i.height} {i.content_type}" for i in images)
    text = f"saved {len(images)} {noun} ({', '.join(kinds)}) to {', '.join(paths)}"
    text += f" in {elapsed:.1f}s"
    return text + (f", cost ${cost:g}" if cost is not None else "")


async def _status(run: Run) -> int:
    handle, _ = _load_handle(run.args.handle_file)
    run.job = handle
    async with _client(run, handle.provider, handle.base_url) as client:
        report = await client.status(handle)
    data = {
        "status": report.status.value,
        "raw_status": report.raw_status,
        "queue_position": report.queue_position,
        "eta_seconds": report.eta_seconds,
        "error": report.error,
        "error_type": report.error_type,
        "request_id": report.request_id or handle.request_id,
    }
    _emit(run.args, _status_line(handle, report), data)
    return 0


def _status_line(handle: JobHandle, report: StatusReport) -> str:
    line = describe(handle.provider, replace(report, request_id=handle.request_id))
    if report.error:
        line += f": {report.error_type or 'error'}: {report.error}"
    return line


async def _cancel(run: Run) -> int:
    handle, _ = _load_handle(run.args.handle_file)
    run.job = handle
    async with _client(run, handle.provider, handle.base_url) as client:
        accepted = await client.cancel(handle)
    text = "cancellation requested" if accepted else "already finished"
    _emit(run.args, text, {"cancelled": accepted, "message": text, "request_id": handle.request_id})
    return 0


COMMANDS: Final[dict[str, Callable[[Run], Coroutine[Any, Any, int]]]] = {
    "generate": _generate,
    "status": _status,
    "wait": _wait,
    "cancel": _cancel,
}


def _fail(run: Run | None, exc: BaseException, as_json: bool) -> int:
    """Report an error (one line on stderr, or JSON on stdout) and return its exit code."""
    code = exit_code(exc)
    name = type(exc).__name__
    handle = _handle_name(run) if run is not None else None
    message = str(exc) or name
    extra: dict[str, Any] = {}
    job = run.job if run is not None else None
    if isinstance(exc, NotFound) and job is not None:  # the job is gone: nothing to resume
        message += "; " + _gone_message(job, exc.job_state)
        extra["job_state"] = exc.job_state
    if as_json:
        data = {"status": "ERROR", "error": name, "message": message, "exit_code": code}
        error_type = exc.error_type if isinstance(exc, JobFailed) else None
        data |= {"error_type": error_type, **extra, "handle": handle}
        print(json.dumps(data), file=sys.stdout, flush=True)
        return code
    if isinstance(exc, RateLimited | ServerError) and exc.retry_after is not None:
        message += f"; the provider asked to retry after {math.ceil(exc.retry_after)}s"
    if handle is not None and not isinstance(exc, JobFailed | NotFound):
        message += f"; the job handle is saved in {handle}: resume with `{PROG} wait {handle}`"
    print(f"{PROG}: {name}: {message}", file=sys.stderr)
    return code


def _gone_message(job: JobHandle, state: str | None) -> str:
    """What a job id that is not found means, and what to do: never to resume it. ``state``
    is the mock's ``X-Mock-Job-State`` (None from a live provider: then neutral)."""
    where = f"{job.provider} at {job.base_url}"
    if state == "expired":
        return (
            f"job {job.request_id} expired: {job.provider} keeps a job and its images only for a "
            "while, and they are gone; submit the job again (this handle cannot resume it)"
        )
    if state == "evicted":
        return (
            f"job {job.request_id} was dropped by the mock to keep its store within its bounds "
            "(--max-jobs, --max-job-bytes) and its images are gone; submit the job again "
            "(this handle cannot resume it)"
        )
    if state == "unknown":
        return (
            f"{where} has no job {job.request_id} for this API key: it never existed there; "
            "check the handle's provider and base URL (or --base-url) and the API key"
        )
    return (
        f"{where} does not find job {job.request_id} for this API key: it expired, or never "
        "existed there; its images cannot be fetched, so submit the job again"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``nanobanana`` command line with ``argv`` (default ``sys.argv[1:]``) and
    return its exit code (see :data:`EXIT_CODES`); errors are reported, never raised."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        return _fail(None, exc, "--json" in argv)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    run = Run(args)
    try:
        return asyncio.run(COMMANDS[args.command](run))
    except (Exception, KeyboardInterrupt) as exc:
        return _fail(run, exc, args.json)
