"""One client test over every surface: the same image (ratio, size) from each of them.

Every provider the mock serves sells Nano Banana Pro; asked for a 16:9 image at 2K through the
project's own client, each gives a real image of Google's documented 2752 x 1536, decoded
and measured here. A surface added without a row below fails the first test."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from nanobanana_mock.names import PROVIDERS
from tests.harness import Mock, releasing
from tests.nanobanana.conftest import ClientFactory

PRO = {  # each surface's Nano Banana Pro, and what its request needs beyond the prompt
    "segmind": ("nano-banana-pro", {}),
    "seaart": ("nano_banana_pro", {}),
    "pixazo": ("nano-banana-pro", {"image_urls": ["https://a.io/in.png"]}),
    "fal": ("nano-banana-pro", {}),
    "gemini": ("gemini-3-pro-image", {}),
}
SIZE = (2752, 1536)  # Nano Banana Pro's 16:9 at 2K


def test_every_surface_the_mock_serves_is_in_the_parity_test() -> None:
    assert sorted(PRO) == sorted(PROVIDERS)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_every_surface_makes_the_same_image(
    mock: Mock, make_client: ClientFactory, provider: str
) -> None:
    model, extra = PRO[provider]
    client = make_client(provider)
    params: dict[str, Any] = {"aspect_ratio": "16:9", "resolution": "2K", **extra}
    async with releasing(mock, 5):  # a blocking surface's call waits on the virtual clock
        result = await client.generate(model, prompt="A red apple on a table", **params)
    (image,) = result.images
    assert image.data is not None
    decoded = Image.open(io.BytesIO(image.data))
    decoded.load()  # a whole, valid image, not only a header
    assert decoded.size == (image.width, image.height) == SIZE, (provider, decoded.size)
    assert decoded.format in ("PNG", "JPEG", "WEBP")
