"""Shared fixtures: real upstream servers and a real gateway, all on 127.0.0.1."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.gateway import RunningGateway, start_gateway
from tests.support.upstream import Upstream, start_upstream

MakeGateway = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = await start_upstream("a")
    yield server
    await server.runner.cleanup()


@pytest.fixture
async def upstream_b() -> AsyncIterator[Upstream]:
    server = await start_upstream("b")
    yield server
    await server.runner.cleanup()


@pytest.fixture
async def make_gateway(tmp_path: Path) -> AsyncIterator[MakeGateway]:
    """``await make_gateway(yaml_text, **settings)`` starts an in-process gateway with that
    route document (``{up}``/``{up_b}`` style placeholders are the caller's business)."""
    started: list[RunningGateway] = []

    async def factory(config: str | None = None, **settings: Any) -> RunningGateway:
        path: Path | None = None
        if config is not None:
            path = tmp_path / f"routes-{len(started)}.yml"
            path.write_text(textwrap.dedent(config))
        running = await start_gateway(path, **settings)
        started.append(running)
        return running

    yield factory
    for running in started:
        await running.gateway.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    # No cookie jar and no auto-decompression: tests must see exactly what the gateway sent.
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False
    ) as client:
        yield client
