"""Real upstream HTTP servers on 127.0.0.1 for integration tests (the demo's echo app)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.demo.echo import make_app


@dataclass
class Upstream:
    name: str
    port: int
    runner: web.AppRunner
    secure: bool = False  # serving HTTPS

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://127.0.0.1:{self.port}"


async def serve(
    app: web.Application,
    port: int = 0,
    *,
    reuse_address: bool | None = None,
    ssl_context: ssl.SSLContext | None = None,
    **options: Any,
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on 127.0.0.1 (a free port when 0); the runner and the bound port.
    ``ssl_context``: serve HTTPS with it. ``options`` go to the AppRunner
    (``shutdown_timeout``, ``auto_decompress``, ...)."""
    runner = web.AppRunner(app, access_log=None, **options)
    await runner.setup()
    site = web.TCPSite(
        runner, "127.0.0.1", port, reuse_address=reuse_address, ssl_context=ssl_context
    )
    await site.start()
    return runner, runner.addresses[0][1]


async def start_upstream(
    name: str, port: int = 0, *, ssl_context: ssl.SSLContext | None = None
) -> Upstream:
    runner, bound = await serve(make_app(name), port, ssl_context=ssl_context)
    return Upstream(name, bound, runner, secure=ssl_context is not None)
