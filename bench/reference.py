"""The bare reference server: the least an aiohttp server can do for each benchmarked route.

It parses the body and answers JSON, or answers bytes of the size of a 4K image, with uvloop,
so the mock's figures can be given as ratios to what aiohttp itself costs on this machine.
"""

from __future__ import annotations

import json
import sys

from aiohttp import web

IMAGE = b""  # set from argv: the same number of bytes as the mock's cached 4K image


async def submit(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    return web.json_response(
        {
            "request_id": "00000000-0000-4000-8000-000000000000",
            "status": "QUEUED",
            "prompt": len(body.get("prompt", "")),
        }
    )


async def status(request: web.Request) -> web.Response:
    return web.json_response(
        {"status": "QUEUED", "request_id": request.match_info["id"], "metrics": {}}
    )


async def image(request: web.Request) -> web.Response:
    return web.Response(body=IMAGE, content_type="image/jpeg")


def main() -> None:
    global IMAGE
    n = int(sys.argv[2])  # bench/run.py always passes the size
    IMAGE = (bytes(range(256)) * (n // 256 + 1))[:n]
    app = web.Application()
    app.router.add_post("/v2/{slug}", submit)
    app.router.add_get("/v2/requests/{id}/status", status)
    app.router.add_get("/v2/requests/{id}", status)
    app.router.add_get("/image", image)
    import uvloop

    web.run_app(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
