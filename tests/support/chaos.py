"""A real upstream HTTP server on 127.0.0.1 that misbehaves on command, for resilience tests:
answer normally, answer 503, reset the connection mid-response, stall before the head, or be
down altogether (the port refuses connections) — and count what reached it."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

from tests.support.upstream import serve

Mode = Literal["ok", "503", "reset", "stall"]


@dataclass
class ChaosUpstream:
    name: str
    port: int = 0
    mode: Mode = "ok"
    # Misbehave for the next N requests only, then answer normally (mode stays as set).
    fail_next: int = 0
    fail_mode: Mode = "503"
    received: int = 0
    bodies: list[tuple[int, str]] = field(default_factory=list)  # (length, sha256)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.received += 1
        body = await request.read()
        self.bodies.append((len(body), hashlib.sha256(body).hexdigest()))
        mode = self.mode
        if self.fail_next > 0:
            self.fail_next -= 1
            mode = self.fail_mode
        if mode == "503":
            return web.Response(status=503, text="busy", headers={"X-Upstream": self.name})
        if mode == "stall":
            await asyncio.sleep(3600)
        if mode == "reset":
            response = web.StreamResponse(headers={"X-Upstream": self.name})
            response.content_length = 100_000
            await response.prepare(request)
            await response.write(b"x" * 1000)
            assert request.transport is not None
            request.transport.abort()
            return response
        return web.json_response(
            {"upstream": self.name, "length": len(body), "path": request.path},
            headers={"X-Upstream": self.name},
        )

    async def start(self) -> ChaosUpstream:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.port = await serve(
            app, self.port, reuse_address=True, shutdown_timeout=0.1
        )
        return self

    async def stop(self) -> None:
        """Down: the listener closes and open connections drop (the port then refuses)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def start_chaos(*names: str) -> list[ChaosUpstream]:
    return [await ChaosUpstream(name).start() for name in names]
