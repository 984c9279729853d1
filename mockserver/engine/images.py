"""Deterministic stand-in images of the size and format the real services return.

A finished mock job serves a real, decodable picture: its pixel size follows the
Google size table for the model, aspect ratio and resolution tier (the table and its
sources: docs/providers.md#output-image-sizes), its encoding follows the requested
output format, and its content depends only on an :class:`ImageSpec`, so the same
seed and request give byte-identical files.

Rendering a 4K image takes a noticeable fraction of a second, so
:class:`ImageCache` runs it off the event loop, coalesces concurrent requests for
the same spec and keeps recent results in a byte-bounded LRU.

Errors: unknown families, ratios, tiers and formats raise :class:`ValueError`;
requests are validated against the JSON Schemas before they reach this module,
so that is a programming error, not a contract finding.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import io
import multiprocessing
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NamedTuple

from PIL import Image, ImageDraw, ImageFont

from nanobanana_mock.schemas import media

__all__ = [
    "FAMILIES",
    "FORMATS",
    "STANDARD_RATIOS",
    "TIERS",
    "ImageCache",
    "ImageFormat",
    "ImageSpec",
    "content_type",
    "extension",
    "normalise_tier",
    "pixel_size",
    "render",
]

# --------------------------------------------------------------------------- sizes

TIERS: Final = media.TIERS  # and their spellings: schemas/common.json
FAMILIES: Final = (
    "nano-banana",
    "nano-banana-pro",
    "nano-banana-2",
    "gemini-2.5-flash-image",
    "gemini-3.1-flash-image",
)

# Google's Gemini 3 Pro Image table [DOC Google; 3P live matrix], as in
# docs/providers.md#output-image-sizes:
# ratio -> {tier: (width, height)}.
_STANDARD: Final[dict[str, dict[str, tuple[int, int]]]] = {
    "1:1": {"1K": (1024, 1024), "2K": (2048, 2048), "4K": (4096, 4096)},
    "2:3": {"1K": (848, 1264), "2K": (1696, 2528), "4K": (3392, 5056)},
    "3:2": {"1K": (1264, 848), "2K": (2528, 1696), "4K": (5056, 3392)},
    "3:4": {"1K": (896, 1200), "2K": (1792, 2400), "4K": (3584, 4800)},
    "4:3": {"1K": (1200, 896), "2K": (2400, 1792), "4K": (4800, 3584)},
    "4:5": {"1K": (928, 1152), "2K": (1856, 2304), "4K": (3712, 4608)},
    "5:4": {"1K": (1152, 928), "2K": (2304, 1856), "4K": (4608, 3712)},
    "9:16": {"1K": (768, 1376), "2K": (1536, 2752), "4K": (3072, 5504)},
    "16:9": {"1K": (1376, 768), "2K": (2752, 1536), "4K": (5504, 3072)},
    "21:9": {"1K": (1584, 672), "2K": (3168, 1344), "4K": (6336, 2688)},
}
STANDARD_RATIOS: Final = tuple(_STANDARD)

# Gemini 2.5 Flash Image as Google's own API serves it: one size per ratio [DOC Google
# image-generation, the 2.5 Flash table] (the resellers' nano-banana uses the table above).
_GEMINI_25: Final[dict[str, tuple[int, int]]] = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}

# Nano Banana 2 only, 1K sizes from a third-party live matrix [3P].
_EXTREME_1K: Final[dict[str, tuple[int, int]]] = {
    "1:4": (512, 2064),
    "4:1": (2064, 512),
    "1:8": (352, 2928),
    "8:1": (2928, 352),
}
# Gemini 3.1 Flash Image as Google's own page gives it [DOC Google image-generation]: 1:4 is
# 512x2048 and 8:1 3072x384 at 1K, 8:1 12288x1536 at 4K; 4:1 and 1:8 are their transposes [INF].
_GOOGLE_EXTREME_1K: Final[dict[str, tuple[int, int]]] = {
    "1:4": (512, 2048),
    "4:1": (2048, 512),
    "1:8": (384, 3072),
    "8:1": (3072, 384),
}
# [INF] No source gives the extreme ratios at 2K/4K; we assume exactly 2x/4x the 1K
# size, which is what the standard table does for every ratio.
_TIER_SCALE: Final[dict[str, int]] = {"1K": 1, "2K": 2, "4K": 4}

# [3P] Nano Banana 2 "auto" gave 1376x768 (the 16:9 size) in the live matrix.
# [INF] For Nano Banana and Nano Banana Pro we answer "auto" with the 1:1 size.
_AUTO_RATIO: Final[dict[str, str]] = {
    "nano-banana": "1:1",
    "nano-banana-pro": "1:1",
    "nano-banana-2": "16:9",
    "gemini-2.5-flash-image": "1:1",
    "gemini-3.1-flash-image": "16:9",
}

_TIER_SPELLINGS: Final = media.TIER_SPELLINGS


def normalise_tier(tier: str) -> str:
    """Map a tier spelling ("512px", "0.5K", "2k", ...) to one of :data:`TIERS`."""
    try:
        return _TIER_SPELLINGS[tier.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown resolution tier {tier!r}; expected one of "
            f"{', '.join(sorted(_TIER_SPELLINGS))} (case-insensitive)"
        ) from None


def pixel_size(family: str, aspect_ratio: str, tier: str) -> tuple[int, int]:
    """Return the ``(width, height)`` the real service produces for this request."""
    if family not in _AUTO_RATIO:
        raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")
    norm = normalise_tier(tier)
    ratio = _AUTO_RATIO[family] if aspect_ratio == "auto" else aspect_ratio
    if family == "nano-banana":
        # Gemini 2.5 Flash Image has no size tiers: always the 1K size [DOC Google].
        return _standard_size(family, ratio, "1K")
    if family == "gemini-2.5-flash-image":
        if ratio not in _GEMINI_25:
            raise ValueError(f"unknown aspect ratio {ratio!r} for {family}")
        return _GEMINI_25[ratio]
    if family == "nano-banana-pro":
        if norm == "512":
            raise ValueError("nano-banana-pro has no 512 tier; expected 1K, 2K or 4K")
        return _standard_size(family, ratio, norm)
    extremes = _GOOGLE_EXTREME_1K if family == "gemini-3.1-flash-image" else _EXTREME_1K
    return _nano_banana_2_size(ratio, norm, extremes)


def _standard_size(family: str, ratio: str, tier: str) -> tuple[int, int]:
    try:
        return _STANDARD[ratio][tier]
    except KeyError:
        raise ValueError(
            f"unknown aspect ratio {ratio!r} for {family}; expected auto or one of "
            f"{', '.join(STANDARD_RATIOS)}"
        ) from None


def _nano_banana_2_size(
    ratio: str, tier: str, extremes: dict[str, tuple[int, int]] = _EXTREME_1K
) -> tuple[int, int]:
    if tier == "512":
        # [3P] The 512px / 0.5K tier is half the 1K size on each side (all 1K sides are even).
        width, height = _nano_banana_2_size(ratio, "1K", extremes)
        return width // 2, height // 2
    if ratio in _STANDARD:
        return _STANDARD[ratio][tier]
    if ratio in extremes:
        width, height = extremes[ratio]
        return width * _TIER_SCALE[tier], height * _TIER_SCALE[tier]
    known = ", ".join((*STANDARD_RATIOS, *_EXTREME_1K))
    raise ValueError(
        f"unknown aspect ratio {ratio!r} for nano-banana-2; expected auto or one of {known}"
    )


# --------------------------------------------------------------------------- formats


class ImageFormat(NamedTuple):
    """How a requested output format is served and encoded."""

    content_type: str
    pillow_format: str
    extension: str


# The format names, their media types and extensions are the contracts' (common.json); the
# encoder of each media type is Pillow's.
_PILLOW: Final = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
FORMATS: Final[dict[str, ImageFormat]] = {
    name: ImageFormat(kind, _PILLOW[kind], media.EXTENSIONS[kind])
    for name, kind in media.MEDIA_TYPES.items()
}

# Fast settings: the mock's images are synthetic and large; size on disk is no goal.
_SAVE_OPTIONS: Final[dict[str, dict[str, object]]] = {
    "PNG": {"compress_level": 1, "optimize": False},
    "JPEG": {"quality": 85, "optimize": False, "progressive": False},
    "WEBP": {"quality": 80, "method": 0, "lossless": False},
}


def _format(fmt: str) -> ImageFormat:
    try:
        return FORMATS[fmt.lower()]
    except KeyError:
        raise ValueError(
            f"unknown image format {fmt!r}; expected one of {', '.join(FORMATS)}"
        ) from None


def content_type(fmt: str) -> str:
    """The ``Content-Type`` for a requested format name ("jpg", "png", ...)."""
    return _format(fmt).content_type


def extension(fmt: str) -> str:
    """The file extension, without the dot, for a requested format name."""
    return _format(fmt).extension


# --------------------------------------------------------------------------- render


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """Everything that determines one rendered image; hashable and picklable."""

    width: int
    height: int
    fmt: str
    seed: int
    label: str


_Colour = tuple[int, int, int]


def _rng(spec: ImageSpec) -> random.Random:
    # Derived from the seed alone, through SHA-256, so the picture does not depend on
    # PYTHONHASHSEED or the interpreter; the label only changes the caption.
    digest = hashlib.sha256(f"nanobanana-mock:{spec.seed}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _colour(rng: random.Random, lo: int = 40, hi: int = 230) -> _Colour:
    return (rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi))


def _background(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A smooth three-colour gradient: a 2x2 seed image upscaled bicubically."""
    a, b, c = _colour(rng), _colour(rng), _colour(rng)
    corners = [a, b, b, c] if rng.random() < 0.5 else [b, a, c, b]
    small = Image.new("RGB", (2, 2))
    small.putdata(corners)
    return small.resize(size, Image.Resampling.BICUBIC)


def _shapes(rng: random.Random, image: Image.Image) -> None:
    width, height = image.size
    unit = min(width, height)
    draw = ImageDraw.Draw(image, "RGBA")
    for _ in range(rng.randint(3, 6)):
        cx, cy = rng.randrange(width), rng.randrange(height)
        r = rng.randint(unit // 10, unit // 3) + 1
        fill = (*_colour(rng, 0, 255), rng.randint(70, 150))
        box = (cx - r, cy - r, cx + r, cy + r)
        kind = rng.randrange(3)
        if kind == 0:
            draw.ellipse(box, fill=fill)
        elif kind == 1:
            draw.rounded_rectangle(box, radius=r // 4, fill=fill)
        else:
            draw.regular_polygon((cx, cy, r), rng.randint(3, 6), rng.uniform(0, 360), fill=fill)


def _caption(image: Image.Image, lines: list[str]) -> None:
    """Draw the lines centred on a translucent band, scaled to the image."""
    width, height = image.size
    probe = ImageFont.load_default(size=100)
    widest = max(probe.getlength(line) for line in lines) or 1.0
    size = int(min(min(width, height) * 0.07, 100 * width * 0.9 / widest))
    font_size = max(size, 6)  # the size asked for: Pillow's bitmap fallback font has none
    font = ImageFont.load_default(size=font_size)
    gap = font_size // 3
    line_height = font_size + gap
    block = line_height * len(lines) + gap
    top = (height - block) // 2
    draw = ImageDraw.Draw(image, "RGBA")
    draw.rectangle((0, top, width, top + block), fill=(0, 0, 0, 110))
    for i, line in enumerate(lines):
        y = top + gap + i * line_height + font_size // 2
        draw.text((width / 2, y), line, font=font, fill=(255, 255, 255), anchor="mm")


def render(spec: ImageSpec) -> bytes:
    """Encode the synthetic picture for ``spec``; a pure, deterministic function."""
    fmt = _format(spec.fmt)
    if spec.width <= 0 or spec.height <= 0:
        raise ValueError(f"image size must be positive, got {spec.width}x{spec.height}")
    rng = _rng(spec)
    image = _background(rng, (spec.width, spec.height))
    _shapes(rng, image)
    label = spec.label if len(spec.label) <= 60 else spec.label[:57] + "..."
    _caption(image, [line for line in (label, f"{spec.width}x{spec.height}") if line])
    out = io.BytesIO()
    # A freshly built image carries no info/EXIF/ICC, and Pillow writes no timestamps.
    image.save(out, fmt.pillow_format, **_SAVE_OPTIONS[fmt.pillow_format])
    return out.getvalue()


# --------------------------------------------------------------------------- cache


class ImageCache:
    """Byte-bounded LRU of rendered images, rendered off the event loop, single-flight.

    Without an ``executor`` the cache lazily starts its own process pool (two workers,
    "forkserver" where available, else "spawn"; both are safe in a threaded parent),
    so ``renderer`` must then be picklable: a module-level function. Pass an executor
    to choose otherwise (tests pass a thread pool to use local renderers).

    Why processes, measured on the 2-core target (Python 3.11, Pillow 13): an asyncio
    ticker (``sleep(0.005)`` in a loop) ran while nine 4K renders (5504x3072, 6336x2688,
    3392x5056; png, jpg, webp) ran one at a time, then two at a time:

    ======================  ==============  ===============  ==================
    executor                worst tick gap  p99 tick gap     mean render
    ======================  ==============  ===============  ==================
    none (on the loop)      2708-3011 ms    -                300-330 ms
    thread pool, 1 at once  66-69 ms        18 ms            330-345 ms
    thread pool, 2 at once  75-86 ms        19-45 ms         345-435 ms
    process pool, 1         6.1-8.4 ms      5.7-6.0 ms       305-340 ms
    process pool, 2         8.8-9.1 ms      7.4-8.5 ms       340-375 ms
    ======================  ==============  ===============  ==================

    Pillow's WebP encoder holds the GIL for about 65 ms of a 4K encode (the caption
    ~14 ms, JPEG ~10 ms); PNG and resizing release it. A process pool keeps the loop
    within the ticker's own 5 ms resolution at no measurable per-render cost (a 1K
    image: ~1 ms round trip); its one-off price is ~90 ms to start the workers.
    """

    def __init__(
        self,
        max_bytes: int,
        executor: concurrent.futures.Executor | None = None,
        renderer: Callable[[ImageSpec], bytes] = render,
    ) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self._max_bytes = max_bytes
        self._executor = executor
        self._owns_executor = executor is None
        self._renderer = renderer
        self._entries: OrderedDict[ImageSpec, bytes] = OrderedDict()
        self._size = 0
        self._inflight: dict[ImageSpec, asyncio.Task[bytes]] = {}
        self._closed = False

    @property
    def max_bytes(self) -> int:
        """The byte budget of the stored images."""
        return self._max_bytes

    @property
    def size_bytes(self) -> int:
        """Total size of the stored images, never above :attr:`max_bytes`."""
        return self._size

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, spec: ImageSpec) -> bytes | None:
        """The stored bytes for ``spec``, or None; neither renders nor refreshes recency."""
        return self._entries.get(spec)

    def clear(self) -> None:
        """Forget every stored image (renders in flight still complete and are stored)."""
        self._entries.clear()
        self._size = 0

    async def get(self, spec: ImageSpec) -> bytes:
        """Return the image for ``spec``: from the cache, or from one shared render."""
        data = self._entries.get(spec)
        if data is not None:
            self._entries.move_to_end(spec)
            return data
        task = self._inflight.get(spec)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._render(spec))
            task.add_done_callback(_consume_exception)
            self._inflight[spec] = task
        # Shielded: a caller that gives up must not cancel the render others await.
        return await asyncio.shield(task)

    async def close(self) -> None:
        """Stop rendering; shut down the executor if this cache created it."""
        self._closed = True
        executor, self._executor = self._executor, None
        if self._owns_executor and executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True)

    async def _render(self, spec: ImageSpec) -> bytes:
        try:
            executor = self._ensure_executor()
            loop = asyncio.get_running_loop()
            data = await loop.run_in_executor(executor, self._renderer, spec)
        except concurrent.futures.BrokenExecutor:
            # A worker died (e.g. killed for memory): start a fresh pool next time.
            if self._owns_executor and self._executor is executor:
                self._executor = None
                executor.shutdown(wait=False)
            raise
        finally:
            del self._inflight[spec]
        self._store(spec, data)
        return data

    def _ensure_executor(self) -> concurrent.futures.Executor:
        if self._closed:
            raise RuntimeError("ImageCache is closed")
        if self._executor is None:
            self._executor = _default_executor()
        return self._executor

    def _store(self, spec: ImageSpec, data: bytes) -> None:
        if len(data) > self._max_bytes or spec in self._entries:
            return
        self._entries[spec] = data
        self._size += len(data)
        while self._size > self._max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._size -= len(evicted)


def _consume_exception(task: asyncio.Task[bytes]) -> None:
    # Every caller may have been cancelled; retrieve the error so asyncio stays quiet.
    if not task.cancelled():
        task.exception()


def _default_executor() -> concurrent.futures.Executor:
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    return concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context)
