"""An echo upstream: answers with what it received, so a person (or a test) can see exactly
what the gateway forwarded. Also streams, delays, and echoes WebSocket messages."""

from __future__ import annotations

import asyncio
import json

from aiohttp import WSMsgType, web

NAME_KEY = web.AppKey("name", str)


async def echo(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await websocket(request)
    body = await request.read()
    data = {
        "upstream": request.app[NAME_KEY],
        "method": request.method,
        "path": request.path,
        "raw_path": request.raw_path,
        "query": request.query_string,
        "headers": [[k, v] for k, v in request.headers.items()],
        "body_length": len(body),
        "body": body[:1024].decode("utf-8", "replace"),
    }
    return web.json_response(data, headers={"X-Upstream": request.app[NAME_KEY]})


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(f"{request.app[NAME_KEY]}: {msg.data}")
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def delay(request: web.Request) -> web.Response:
    seconds = float(request.match_info["seconds"])
    await asyncio.sleep(seconds)
    return web.json_response({"upstream": request.app[NAME_KEY], "slept": seconds})


async def stream_bytes(request: web.Request) -> web.StreamResponse:
    """``/bytes/<n>``: n bytes, streamed in 64 KiB chunks with no Content-Length."""
    total = int(request.match_info["n"])
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    block = b"x" * 65536
    sent = 0
    while sent < total:
        piece = block[: min(len(block), total - sent)]
        await response.write(piece)
        sent += len(piece)
    await response.write_eof()
    return response


async def sink(request: web.Request) -> web.Response:
    """Reads the body as a stream and reports its size, without holding it in memory."""
    total = 0
    async for piece in request.content.iter_any():
        total += len(piece)
    return web.json_response({"upstream": request.app[NAME_KEY], "received": total})


async def status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    return web.Response(status=code, text=json.dumps({"status": code}))


def make_app(name: str) -> web.Application:
    app = web.Application(client_max_size=1024**3)
    app[NAME_KEY] = name
    app.router.add_get("/delay/{seconds}", delay)
    app.router.add_get("/bytes/{n}", stream_bytes)
    app.router.add_get("/status/{code}", status)
    app.router.add_route("*", "/sink", sink)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


def main() -> None:
    """``python -m gateway.demo.echo PORT [NAME]``: one echo upstream in the foreground."""
    import sys

    port = int(sys.argv[1])
    name = sys.argv[2] if len(sys.argv) > 2 else "echo"
    web.run_app(make_app(name), host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
