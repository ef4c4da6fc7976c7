"""What the dashboard's browser tests share: where Chromium and the screenshots are, a tab
that records its console, traffic through the proxy port and the stats it makes."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiohttp
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
)

from tests.support.gateway import RunningGateway

CHROMIUM = Path("/usr/bin/chromium")
NO_CHROMIUM = (
    f"{CHROMIUM} is missing: the dashboard's browser tests drive Debian's Chromium "
    "(`make test` installs it; or `apt-get install chromium`)"
)
ROOT = Path(__file__).resolve().parents[2]
# The test artefacts: one screenshot per page, viewport and colour scheme.
SCREENSHOTS = ROOT / "build" / "screenshots"
DOCS = ROOT / "docs"
# Set to copy the overview and services screenshots over the README's (docs/).
UPDATE_DOCS = os.environ.get("MESHGATE_DOCS_SCREENSHOTS") == "1"

DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 375, "height": 740}
ColorScheme = Literal["light", "dark"]
T = TypeVar("T")


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"


def publish_to_docs(name: str, docs_name: str) -> None:
    """Copy ``build/screenshots/<name>.png`` to ``docs/<docs_name>`` when asked to."""
    if UPDATE_DOCS:
        shutil.copyfile(screenshot_path(name), DOCS / docs_name)


@dataclass
class ConsoleLog:
    """What a page reported: console errors and uncaught exceptions, as text."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        where = message.location.get("url", "")
        text = f"console.{message.type}: {message.text} ({where})"
        if message.type == "error":
            self.errors.append(text)
        elif message.type == "warning":
            self.warnings.append(text)


@dataclass
class Tab:
    page: Page
    context: BrowserContext
    console: ConsoleLog

    async def close(self) -> None:
        await self.context.close()


async def open_tab(
    browser: Browser,
    url: str,
    *,
    viewport: ViewportSize = DESKTOP,
    color_scheme: ColorScheme = "light",
) -> Tab:
    """A fresh context (own sessionStorage) with one page that has loaded ``url``; the page's
    console is recorded from before the first byte."""
    context = await browser.new_context(
        viewport=viewport,
        color_scheme=color_scheme,
        reduced_motion="reduce",
    )
    page = await context.new_page()
    console = ConsoleLog()
    console.attach(page)
    await page.goto(url)
    return Tab(page, context, console)


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 5.0
) -> T:
    """Poll ``probe`` until ``done`` says yes of what it returned; the last value either way."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


# -- traffic and the stats it makes ----------------------------------------------------------


@dataclass
class Traffic:
    """Requests through the gateway's proxy port from a few concurrent clients, until stopped.
    ``paths`` are (weight, path) pairs; an X-User-Id header spreads users over lanes."""

    base_url: str
    paths: Sequence[tuple[int, str]]
    clients: int = 4
    pause: float = 0.06
    sent: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client(n)) for n in range(self.clients)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _client(self, seed: int) -> None:
        rng = random.Random(seed)
        weights = [weight for weight, _ in self.paths]
        choices = [path for _, path in self.paths]
        async with aiohttp.ClientSession() as session:
            while not self._stop.is_set():
                path = rng.choices(choices, weights)[0]
                headers = {"X-User-Id": str(rng.randrange(1000))}
                try:
                    async with session.get(
                        self.base_url + path, headers=headers, allow_redirects=False
                    ) as response:
                        await response.read()
                    self.sent += 1
                except aiohttp.ClientError:
                    pass  # an upstream a test stopped: that is its business
                await asyncio.sleep(self.pause * rng.uniform(0.5, 1.5))


async def get_stats(gateway: RunningGateway, token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        url = f"{gateway.management_url}/actuator/gateway/stats"
        async with session.get(url, headers=headers) as response:
            assert response.status == 200, await response.text()
            stats: dict[str, Any] = json.loads(await response.text())
            return stats


def complete_points(stats: dict[str, Any]) -> int:
    """Series points whose 5 s bucket has ended (the dashboard charts only those)."""
    series = stats.get("series") or {}
    interval = float(series.get("interval") or 5)
    sampled = stats.get("timestamp")
    if not isinstance(sampled, (int, float)):
        return 0
    return sum(1 for start in series.get("timestamps") or () if start + interval <= sampled)


async def wait_for_points(gateway: RunningGateway, points: int, timeout: float = 25.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        stats = await get_stats(gateway)
        if complete_points(stats) >= points:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no {points} complete series points in {timeout} s: {stats}")
        await asyncio.sleep(0.5)
