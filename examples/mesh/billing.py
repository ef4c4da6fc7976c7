"""``billing``: answers ``GET /invoices/{id}`` with who it is (instance and lane) and what trace
context reached it. Registers itself in Consul (``CONSUL_HTTP_ADDR``), in a lane when given.

    python -m examples.mesh.billing --port 9301 --name stable-1
    python -m examples.mesh.billing --port 9303 --name canary --lane canary
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from aiohttp import web

from discovery.mesh import registration_ctx
from examples.mesh.telemetry import server_spans, tracing_ctx

HOST = "127.0.0.1"


def make_app(name: str, port: int, lane: str | None) -> web.Application:
    async def invoice(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "invoice": request.match_info["id"],
                "billing": name,
                "lane": lane or "stable",
                "traceparent": request.headers.get("traceparent"),
                "baggage": request.headers.getall("baggage", []),
            }
        )

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[server_spans("examples.mesh.billing")])
    app.router.add_get("/invoices/{id}", invoice)
    app.router.add_get("/health", health)
    app.cleanup_ctx.append(tracing_ctx("billing"))
    app.cleanup_ctx.append(
        registration_ctx(
            "billing",
            port,
            address=HOST,
            service_id=f"billing-{name}",
            meta={"lane": lane} if lane else None,
            check_interval=1.0,
            check_timeout=1.0,
            grace=0.0,
        )
    )
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.mesh.billing")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--lane")
    args = parser.parse_args(argv)
    app = make_app(args.name, args.port, args.lane)
    web.run_app(app, host=HOST, port=args.port, print=None, access_log=None, shutdown_timeout=1)


if __name__ == "__main__":
    main()
