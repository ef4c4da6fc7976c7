"""What the demo's aiohttp services share: their Consul registration and their command line."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from aiohttp import web

from discovery.mesh import MeshRegistration, registration_ctx

HOST = "127.0.0.1"

MakeApp = Callable[[str, int, str | None], web.Application]


def registered(service: str, name: str, port: int, lane: str | None) -> MeshRegistration:
    """The app's registration in Consul (``CONSUL_HTTP_ADDR``): checked every second, in a
    lane when given, gone at once on shutdown (a demo has no callers to drain)."""
    return registration_ctx(
        service,
        port,
        address=HOST,
        service_id=f"{service}-{name}",
        meta={"lane": lane} if lane else None,
        check_interval=1.0,
        check_timeout=1.0,
        grace=0.0,
    )


def serve(prog: str, make_app: MakeApp, argv: Sequence[str] | None = None) -> None:
    """``--port``, ``--name`` and ``--lane`` → the app, served on 127.0.0.1 until stopped."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--lane")
    args = parser.parse_args(argv)
    app = make_app(args.name, args.port, args.lane)
    web.run_app(app, host=HOST, port=args.port, print=None, access_log=None, shutdown_timeout=1)
