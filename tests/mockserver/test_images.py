"""Tests for mockserver.images: the size table, formats, the renderer and the cache."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import multiprocessing
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image

from nanobanana_mock.engine import images
from nanobanana_mock.engine.images import (
    FORMATS,
    ImageCache,
    ImageSpec,
    content_type,
    extension,
    normalise_tier,
    pixel_size,
    render,
)

ROOT = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------ the size table, restated

# docs/providers.md#output-image-sizes: ratio, 1K, 2K, 4K (width, height). Written out again
# on purpose.
SIZE_TABLE = [
    ("1:1", (1024, 1024), (2048, 2048), (4096, 4096)),
    ("2:3", (848, 1264), (1696, 2528), (3392, 5056)),
    ("3:2", (1264, 848), (2528, 1696), (5056, 3392)),
    ("3:4", (896, 1200), (1792, 2400), (3584, 4800)),
    ("4:3", (1200, 896), (2400, 1792), (4800, 3584)),
    ("4:5", (928, 1152), (1856, 2304), (3712, 4608)),
    ("5:4", (1152, 928), (2304, 1856), (4608, 3712)),
    ("9:16", (768, 1376), (1536, 2752), (3072, 5504)),
    ("16:9", (1376, 768), (2752, 1536), (5504, 3072)),
    ("21:9", (1584, 672), (3168, 1344), (6336, 2688)),
]
TABLE = [
    (ratio, tier, size)
    for ratio, *sizes in SIZE_TABLE
    for tier, size in zip(("1K", "2K", "4K"), sizes, strict=True)
]
ONE_K = {ratio: one_k for ratio, one_k, _, _ in SIZE_TABLE}

# Nano Banana 2 extras: extreme ratios at 1K [3P], 2K/4K as 2x/4x [INF].
EXTREME = [
    ("1:4", "1K", (512, 2064)),
    ("4:1", "1K", (2064, 512)),
    ("1:8", "1K", (352, 2928)),
    ("8:1", "1K", (2928, 352)),
    ("1:4", "2K", (1024, 4128)),
    ("4:1", "2K", (4128, 1024)),
    ("1:8", "2K", (704, 5856)),
    ("8:1", "2K", (5856, 704)),
    ("1:4", "4K", (2048, 8256)),
    ("4:1", "4K", (8256, 2048)),
    ("1:8", "4K", (1408, 11712)),
    ("8:1", "4K", (11712, 1408)),
]
# Nano Banana 2 512 tier: half the 1K size on each side.
HALF = [
    ("1:1", (512, 512)),
    ("2:3", (424, 632)),
    ("3:2", (632, 424)),
    ("3:4", (448, 600)),
    ("4:3", (600, 448)),
    ("4:5", (464, 576)),
    ("5:4", (576, 464)),
    ("9:16", (384, 688)),
    ("16:9", (688, 384)),
    ("21:9", (792, 336)),
    ("1:4", (256, 1032)),
    ("4:1", (1032, 256)),
    ("1:8", (176, 1464)),
    ("8:1", (1464, 176)),
]


@pytest.mark.parametrize(("ratio", "tier", "size"), TABLE)
def test_pro_matches_the_table(ratio, tier, size):
    assert pixel_size("nano-banana-pro", ratio, tier) == size


@pytest.mark.parametrize(("ratio", "tier", "size"), TABLE)
def test_nano_banana_2_matches_the_table(ratio, tier, size):
    assert pixel_size("nano-banana-2", ratio, tier) == size


@pytest.mark.parametrize("tier", ["512", "1K", "2K", "4K"])
@pytest.mark.parametrize(("ratio", "size"), ONE_K.items())
def test_nano_banana_is_always_the_1k_size(ratio, size, tier):
    assert pixel_size("nano-banana", ratio, tier) == size


@pytest.mark.parametrize(("ratio", "tier", "size"), EXTREME)
def test_nano_banana_2_extreme_ratios(ratio, tier, size):
    assert pixel_size("nano-banana-2", ratio, tier) == size


@pytest.mark.parametrize(("ratio", "size"), HALF)
def test_nano_banana_2_512_tier_is_half_the_1k_size(ratio, size):
    assert pixel_size("nano-banana-2", ratio, "512px") == size


@pytest.mark.parametrize(
    ("family", "tier", "size"),
    [
        ("nano-banana-2", "1K", (1376, 768)),
        ("nano-banana-2", "2K", (2752, 1536)),
        ("nano-banana-2", "4K", (5504, 3072)),
        ("nano-banana-2", "0.5K", (688, 384)),
        ("nano-banana-pro", "1K", (1024, 1024)),
        ("nano-banana-pro", "4K", (4096, 4096)),
        ("nano-banana", "2K", (1024, 1024)),
    ],
)
def test_auto_ratio(family, tier, size):
    assert pixel_size(family, "auto", tier) == size


@pytest.mark.parametrize(
    ("spelling", "tier"),
    [
        ("512px", "512"),
        ("512", "512"),
        ("0.5K", "512"),
        ("0.5k", "512"),
        ("512PX", "512"),
        ("1K", "1K"),
        ("1k", "1K"),
        ("2K", "2K"),
        ("2k", "2K"),
        ("4K", "4K"),
        ("4k", "4K"),
    ],
)
def test_normalise_tier(spelling, tier):
    assert normalise_tier(spelling) == tier


@pytest.mark.parametrize("tier", ["", "8K", "1024", "1 K", "HD", "0.5"])
def test_normalise_tier_rejects_unknown(tier):
    with pytest.raises(ValueError, match="resolution tier"):
        normalise_tier(tier)


@pytest.mark.parametrize(
    ("family", "ratio", "tier", "match"),
    [
        ("nano-banana-3", "1:1", "1K", "model family"),
        ("gemini", "1:1", "1K", "model family"),
        ("nano-banana-pro", "1:4", "1K", "aspect ratio"),
        ("nano-banana-pro", "8:1", "4K", "aspect ratio"),
        ("nano-banana", "1:8", "1K", "aspect ratio"),
        ("nano-banana-2", "7:3", "1K", "aspect ratio"),
        ("nano-banana-2", "16x9", "1K", "aspect ratio"),
        ("nano-banana-pro", "1:1", "512px", "512 tier"),
        ("nano-banana-pro", "1:1", "8K", "resolution tier"),
        ("nano-banana-2", "1:1", "3K", "resolution tier"),
        ("nano-banana", "1:1", "huge", "resolution tier"),
    ],
)
def test_pixel_size_rejects_unknown(family, ratio, tier, match):
    with pytest.raises(ValueError, match=match):
        pixel_size(family, ratio, tier)


# ------------------------------------------------------------------ formats


@pytest.mark.parametrize(
    ("fmt", "mime", "pillow", "ext"),
    [
        ("jpg", "image/jpeg", "JPEG", "jpg"),
        ("jpeg", "image/jpeg", "JPEG", "jpg"),
        ("png", "image/png", "PNG", "png"),
        ("webp", "image/webp", "WEBP", "webp"),
    ],
)
def test_formats(fmt, mime, pillow, ext):
    assert FORMATS[fmt] == (mime, pillow, ext)
    assert content_type(fmt) == mime
    assert extension(fmt) == ext


def test_formats_are_exactly_these():
    assert set(FORMATS) == {"jpg", "jpeg", "png", "webp"}


@pytest.mark.parametrize("fmt", ["gif", "bmp", "", "image/png"])
def test_unknown_format(fmt):
    with pytest.raises(ValueError, match="image format"):
        content_type(fmt)
    with pytest.raises(ValueError, match="image format"):
        extension(fmt)
    with pytest.raises(ValueError, match="image format"):
        render(ImageSpec(8, 8, fmt, 0, "x"))


# ------------------------------------------------------------------ ImageSpec and render


def spec(width: int = 64, height: int = 48, fmt: str = "png", seed: int = 1, label: str = "t"):
    return ImageSpec(width, height, fmt, seed, label)


def test_spec_is_frozen_hashable_and_picklable():
    s = spec()
    assert {s: 1}[spec()] == 1
    assert pickle.loads(pickle.dumps(s)) == s
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.seed = 2  # type: ignore[misc]


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize(
    ("width", "height", "fmt", "pillow"),
    [
        (1376, 768, "png", "PNG"),
        (1376, 768, "jpg", "JPEG"),
        (1376, 768, "jpeg", "JPEG"),
        (1376, 768, "webp", "WEBP"),
        (5504, 3072, "jpg", "JPEG"),
        (352, 2928, "png", "PNG"),
        (2928, 352, "webp", "WEBP"),
        (688, 384, "jpg", "JPEG"),
        (1, 1, "png", "PNG"),
        (3, 17, "webp", "WEBP"),
    ],
)
def test_render_decodes_to_the_requested_format_and_size(width, height, fmt, pillow):
    image = decode(render(spec(width, height, fmt, label="nano-banana-2: a banana")))
    assert image.format == pillow
    assert image.size == (width, height)
    assert image.mode == "RGB"


def png_chunks(data: bytes) -> list[bytes]:
    chunks, i = [], 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        chunks.append(data[i + 4 : i + 8])
        i += 12 + length
    return chunks


def webp_chunks(data: bytes) -> list[bytes]:
    chunks, i = [], 12
    while i < len(data):
        (length,) = struct.unpack("<I", data[i + 4 : i + 8])
        chunks.append(data[i : i + 4])
        i += 8 + length + (length & 1)
    return chunks


def jpeg_header_markers(data: bytes) -> list[int]:
    markers, i = [], 2
    while data[i + 1] != 0xDA:  # up to start of scan
        markers.append(data[i + 1])
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        i += 2 + length
    return markers


def test_png_has_only_image_chunks():
    assert png_chunks(render(spec(fmt="png"))) == [b"IHDR", b"IDAT", b"IEND"]


def test_webp_is_a_bare_lossy_bitstream():
    assert webp_chunks(render(spec(fmt="webp"))) == [b"VP8 "]


def test_jpeg_has_no_exif_xmp_icc_or_comment():
    markers = jpeg_header_markers(render(spec(fmt="jpg")))
    assert 0xE0 in markers  # JFIF
    assert not [m for m in markers if 0xE1 <= m <= 0xEF or m == 0xFE]


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp"])
def test_render_is_deterministic(fmt):
    assert render(spec(fmt=fmt)) == render(spec(fmt=fmt))


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp"])
def test_seed_changes_the_image(fmt):
    assert render(spec(fmt=fmt, seed=1)) != render(spec(fmt=fmt, seed=2))


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp"])
def test_label_changes_the_image(fmt):
    one = spec(200, 120, fmt, label="nano-banana: a cat")
    other = spec(200, 120, fmt, label="nano-banana: a dog")
    assert render(one) != render(other)


def test_seed_changes_the_pixels_not_just_the_bytes():
    one = decode(render(spec(fmt="png", seed=1, label="")))
    other = decode(render(spec(fmt="png", seed=2, label="")))
    assert one.tobytes() != other.tobytes()


CHILD = """
import hashlib, sys
from nanobanana_mock.engine.images import ImageSpec, render
w, h, fmt, seed, label = sys.argv[1:]
data = render(ImageSpec(int(w), int(h), fmt, int(seed), label))
sys.stdout.write(hashlib.sha256(data).hexdigest())
"""


def test_render_is_identical_in_another_interpreter():
    s = spec(640, 360, "webp", seed=42, label="nano-banana-pro: cross-process")
    args = [str(s.width), str(s.height), s.fmt, str(s.seed), s.label]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args], cwd=ROOT, env=env, capture_output=True, check=True
    )
    assert out.stdout.decode() == hashlib.sha256(render(s)).hexdigest()


def test_public_surface():
    assert sorted(images.__all__) == [
        "FAMILIES",
        "FORMATS",
        "ImageCache",
        "ImageFormat",
        "ImageSpec",
        "STANDARD_RATIOS",
        "TIERS",
        "content_type",
        "extension",
        "normalise_tier",
        "pixel_size",
        "render",
    ]
    assert all(hasattr(images, name) for name in images.__all__)


# ------------------------------------------------------------------ ImageCache


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


class Recorder:
    """A renderer that counts calls, records their threads, and can be held back."""

    def __init__(self, gated: bool = False) -> None:
        self.calls: list[ImageSpec] = []
        self.threads: list[int] = []
        self.release = threading.Event()
        self.started = threading.Event()
        if not gated:
            self.release.set()

    def __call__(self, s: ImageSpec) -> bytes:
        self.calls.append(s)
        self.threads.append(threading.get_ident())
        self.started.set()
        assert self.release.wait(timeout=30), "test never released the renderer"
        if s.label == "boom":
            raise RuntimeError("render failed")
        return b"x" * s.width  # the width sets the size in bytes


async def test_cache_returns_what_render_returns(pool):
    cache = ImageCache(max_bytes=10_000_000, executor=pool)
    s = spec(320, 200, "jpg", label="nano-banana-pro: cached")
    assert await cache.get(s) == render(s)
    assert cache.peek(s) == render(s)
    assert len(cache) == 1
    assert cache.size_bytes == len(render(s))


async def test_second_get_is_served_from_the_cache(pool):
    renderer = Recorder()
    cache = ImageCache(max_bytes=1000, executor=pool, renderer=renderer)
    first = await cache.get(spec(100))
    second = await cache.get(spec(100))
    assert first == second == b"x" * 100
    assert len(renderer.calls) == 1
    await cache.get(spec(100, seed=2))
    assert len(renderer.calls) == 2


async def test_concurrent_gets_share_one_render(pool):
    renderer = Recorder(gated=True)
    cache = ImageCache(max_bytes=1000, executor=pool, renderer=renderer)
    tasks = [asyncio.create_task(cache.get(spec(100))) for _ in range(10)]
    await asyncio.to_thread(renderer.started.wait, 30)
    renderer.release.set()
    results = await asyncio.gather(*tasks)
    assert results == [b"x" * 100] * 10
    assert len(renderer.calls) == 1


async def test_a_cancelled_caller_does_not_cancel_the_shared_render(pool):
    renderer = Recorder(gated=True)
    cache = ImageCache(max_bytes=1000, executor=pool, renderer=renderer)
    quitter = asyncio.create_task(cache.get(spec(100)))
    stayer = asyncio.create_task(cache.get(spec(100)))
    await asyncio.to_thread(renderer.started.wait, 30)
    quitter.cancel()
    renderer.release.set()
    assert await stayer == b"x" * 100
    with pytest.raises(asyncio.CancelledError):
        await quitter
    assert cache.peek(spec(100)) == b"x" * 100
    assert len(renderer.calls) == 1


async def test_render_errors_reach_every_caller_and_are_not_cached(pool):
    renderer = Recorder(gated=True)
    cache = ImageCache(max_bytes=1000, executor=pool, renderer=renderer)
    bad = spec(10, label="boom")
    tasks = [asyncio.create_task(cache.get(bad)) for _ in range(3)]
    await asyncio.to_thread(renderer.started.wait, 30)
    renderer.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert cache.peek(bad) is None
    with pytest.raises(RuntimeError, match="render failed"):
        await cache.get(bad)
    assert len(renderer.calls) == 2


async def test_lru_eviction_by_bytes(pool):
    cache = ImageCache(max_bytes=250, executor=pool, renderer=Recorder())
    a, b, c = spec(100, seed=1), spec(100, seed=2), spec(100, seed=3)
    await cache.get(a)
    await cache.get(b)
    await cache.get(a)  # a is now the most recently used
    await cache.get(c)
    assert cache.peek(b) is None
    assert cache.peek(a) is not None
    assert cache.peek(c) is not None
    assert len(cache) == 2
    assert cache.size_bytes == 200 <= cache.max_bytes


async def test_eviction_frees_enough_for_a_large_entry(pool):
    cache = ImageCache(max_bytes=250, executor=pool, renderer=Recorder())
    for seed in range(5):
        await cache.get(spec(50, seed=seed))
    assert cache.size_bytes == 250
    await cache.get(spec(200, seed=99))
    assert cache.size_bytes == 250
    assert [cache.peek(spec(50, seed=s)) is not None for s in range(5)] == [0, 0, 0, 0, 1]


async def test_peek_does_not_refresh_recency(pool):
    cache = ImageCache(max_bytes=250, executor=pool, renderer=Recorder())
    a, b, c = spec(100, seed=1), spec(100, seed=2), spec(100, seed=3)
    await cache.get(a)
    await cache.get(b)
    assert cache.peek(a) is not None
    await cache.get(c)
    assert cache.peek(a) is None
    assert cache.peek(spec(100, seed=4)) is None


async def test_oversized_image_is_returned_but_not_stored(pool):
    renderer = Recorder()
    cache = ImageCache(max_bytes=250, executor=pool, renderer=renderer)
    small = spec(100)
    await cache.get(small)
    big = spec(300)
    assert await cache.get(big) == b"x" * 300
    assert cache.peek(big) is None
    assert cache.peek(small) is not None
    assert cache.size_bytes == 100
    await cache.get(big)
    assert len(renderer.calls) == 3


async def test_clear(pool):
    cache = ImageCache(max_bytes=1000, executor=pool, renderer=Recorder())
    await cache.get(spec(100, seed=1))
    await cache.get(spec(100, seed=2))
    cache.clear()
    assert len(cache) == 0
    assert cache.size_bytes == 0
    assert cache.peek(spec(100, seed=1)) is None


def test_negative_budget_is_rejected():
    with pytest.raises(ValueError, match="max_bytes"):
        ImageCache(max_bytes=-1)


async def test_renderer_runs_off_the_event_loop_thread(pool):
    renderer = Recorder()
    cache = ImageCache(max_bytes=1000, executor=pool, renderer=renderer)
    await cache.get(spec(10))
    assert renderer.threads
    assert threading.get_ident() not in renderer.threads


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


async def test_loop_serves_requests_while_a_render_is_pending(pool, aiohttp_client):
    app = web.Application()
    app.router.add_get("/ping", ping)
    client = await aiohttp_client(app)
    renderer = Recorder(gated=True)
    cache = ImageCache(max_bytes=1000, executor=pool, renderer=renderer)
    pending = asyncio.create_task(cache.get(spec(100)))
    try:
        await asyncio.to_thread(renderer.started.wait, 30)
        for _ in range(3):
            response = await client.get("/ping")
            assert response.status == 200
            assert await response.text() == "pong"
        assert not pending.done()
    finally:
        renderer.release.set()
    assert await pending == b"x" * 100


def pid_renderer(s: ImageSpec) -> bytes:
    """Module level, so a process pool can pickle it."""
    return str(os.getpid()).encode()


async def test_default_executor_is_a_lazy_process_pool():
    before = set(multiprocessing.active_children())
    cache = ImageCache(max_bytes=1000, renderer=pid_renderer)
    assert set(multiprocessing.active_children()) == before  # nothing started yet
    try:
        worker_pid = int(await cache.get(spec(1)))
    finally:
        await cache.close()
    assert worker_pid != os.getpid()


async def test_default_executor_renders_real_images():
    cache = ImageCache(max_bytes=10_000_000)
    s = spec(400, 300, "webp", label="nano-banana-2: in a worker")
    try:
        assert await cache.get(s) == render(s)
    finally:
        await cache.close()


async def test_closed_cache_refuses_new_renders(pool):
    cache = ImageCache(max_bytes=1000, executor=pool, renderer=Recorder())
    await cache.get(spec(10))
    await cache.close()
    await cache.close()  # idempotent
    assert await cache.get(spec(10)) == b"x" * 10  # still served from memory
    with pytest.raises(RuntimeError, match="closed"):
        await cache.get(spec(20))
    assert pool.submit(int, "7").result() == 7  # a borrowed executor is left running
