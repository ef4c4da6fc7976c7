"""The reference "afternoon" proxy: what a Python user would write with aiohttp in ~40 lines.
One ClientSession, bodies read whole, hop-by-hop headers dropped.
Usage: python -m bench.naive_proxy PORT UPSTREAM_URL"""

from __future__ import annotations

import sys

from aiohttp import ClientSession, web

HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "host",
    "proxy-authorization",
    "proxy-authenticate",
    "content-length",
}
SESSION = web.AppKey("session", ClientSession)


async def proxy(request: web.Request) -> web.Response:
    upstream = request.app["upstream"]
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
    body = await request.read()
    async with request.app[SESSION].request(
        request.method, upstream + request.path_qs, headers=headers, data=body
    ) as resp:
        payload = await resp.read()
        out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP}
        return web.Response(status=resp.status, headers=out, body=payload)


async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
    app[SESSION] = ClientSession()
    yield
    await app[SESSION].close()


def main() -> None:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app["upstream"] = sys.argv[2]
    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", proxy)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
