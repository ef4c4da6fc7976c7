"""An OTLP/HTTP endpoint that accepts every export and keeps nothing: what traced benchmark
candidates export to, so their cost is tracing's and not a failing exporter's retries.
Usage: python -m bench.otlp_sink PORT"""

from __future__ import annotations

import sys

from aiohttp import web

# An empty ExportTraceServiceResponse serialises to zero bytes.
EMPTY = b""


async def accept(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=EMPTY, content_type="application/x-protobuf")


async def alive(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", accept)
    app.router.add_get("/", alive)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
