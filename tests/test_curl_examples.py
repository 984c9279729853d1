"""The providers' documented curl examples work against the mock with only the origin changed."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.harness import validate

CURL = Path(__file__).parent / "fixtures" / "curl"
pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


async def run(script: str, **env: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "bash",
        str(CURL / script),
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_seaart_documented_submit_then_status_result_cancel(mock) -> None:
    submitted = json.loads(await run("seaart_nano_banana_pro.sh", ORIGIN=mock.base, KEY="sk-1"))
    validate("seaart", "submit", submitted)
    lines = (
        await run(
            "seaart_follow_up.sh",
            KEY="sk-1",
            STATUS_URL=submitted["status_url"],
            RESPONSE_URL=submitted["response_url"],
            CANCEL_URL=submitted["cancel_url"],
        )
    ).splitlines()
    status, pending, cancelled = (json.loads(line) for line in lines)
    validate("seaart", "status", status)
    validate("seaart", "result", pending)
    assert status["status"] == "IN_QUEUE" and pending["status"] == "IN_QUEUE"
    assert cancelled == {"status": "CANCELLATION_REQUESTED"}


async def test_pixazo_documented_generate_and_result(mock) -> None:
    submitted = json.loads(await run("pixazo_generate.sh", ORIGIN=mock.base, KEY="pz"))
    validate("pixazo", "submit", submitted)
    mock.advance(120)
    done = json.loads(
        await run(
            "pixazo_result.sh", ORIGIN=mock.base, KEY="pz", REQUEST_ID=submitted["request_id"]
        )
    )
    validate("pixazo", "result", done)
    assert done["status"] == "COMPLETED"
    assert done["metadata"]["input_image_count"] == 2


async def test_segmind_documented_request_returns_an_image(mock, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    call = asyncio.ensure_future(
        run("segmind_nano_banana.sh", ORIGIN=mock.base, KEY="SG_k", OUT=str(out))
    )
    await mock.state.clock.wait_for_sleepers(1)
    mock.advance(30)
    headers = (await call).lower()
    assert "200 ok" in headers.splitlines()[0] and "x-request-id:" in headers
    assert Image.open(io.BytesIO(out.read_bytes())).size == (1024, 1024)
