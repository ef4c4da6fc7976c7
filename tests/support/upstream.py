"""Real upstream HTTP servers on 127.0.0.1 for integration tests (the demo's echo app)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.demo.echo import make_app


@dataclass
class Upstream:
    name: str
    port: int
    runner: web.AppRunner

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def start_upstream(name: str, port: int = 0) -> Upstream:
    runner = web.AppRunner(make_app(name), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    return Upstream(name, bound, runner)
