"""The gateway as a real process: graceful shutdown, worker processes, and flat memory while
streaming large bodies both ways."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.gateway import GatewayProcess, spawn_gateway
from tests.support.upstream import Upstream

MiB = 1024 * 1024


def write_routes(tmp_path: Path, upstream: Upstream) -> Path:
    path = tmp_path / "routes.yml"
    path.write_text(
        textwrap.dedent(
            f"""
            routes:
              - id: all
                uri: http://127.0.0.1:{upstream.port}
            """
        )
    )
    return path


@pytest.fixture
def gateway_process(tmp_path: Path, upstream: Upstream) -> Iterator[GatewayProcess]:
    process = spawn_gateway(write_routes(tmp_path, upstream), tmp_path)
    yield process
    process.stop()


class PeakRss:
    """Samples a process's RSS in the background while a transfer runs."""

    def __init__(self, process: GatewayProcess) -> None:
        self.process = process
        self.baseline = process.rss_bytes()
        self.peak = self.baseline
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.process.rss_bytes())
            await asyncio.sleep(0.1)

    async def __aenter__(self) -> PeakRss:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, self.process.rss_bytes())

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


@pytest.mark.slow
async def test_512mib_upload_streams_with_flat_memory(gateway_process: GatewayProcess) -> None:
    size = 512 * MiB
    block = b"u" * MiB

    async def body() -> AsyncIterator[bytes]:
        for _ in range(size // MiB):
            yield block

    async with aiohttp.ClientSession() as session, PeakRss(gateway_process) as rss:
        timeout = aiohttp.ClientTimeout(total=300)
        async with session.post(
            f"{gateway_process.url}/sink", data=body(), timeout=timeout
        ) as resp:
            assert resp.status == 200
            assert (await resp.json())["received"] == size
    print(f"gateway RSS growth: {rss.growth / MiB:.1f} MiB")
    assert rss.growth < 64 * MiB, f"gateway RSS grew by {rss.growth / MiB:.1f} MiB"


@pytest.mark.slow
async def test_512mib_download_streams_with_flat_memory(gateway_process: GatewayProcess) -> None:
    size = 512 * MiB
    received = 0
    async with aiohttp.ClientSession() as session, PeakRss(gateway_process) as rss:
        timeout = aiohttp.ClientTimeout(total=300)
        async with session.get(f"{gateway_process.url}/bytes/{size}", timeout=timeout) as resp:
            assert resp.status == 200
            async for piece in resp.content.iter_chunked(MiB):
                received += len(piece)
    assert received == size
    print(f"gateway RSS growth: {rss.growth / MiB:.1f} MiB")
    assert rss.growth < 64 * MiB, f"gateway RSS grew by {rss.growth / MiB:.1f} MiB"


async def test_sigterm_lets_in_flight_requests_finish(gateway_process: GatewayProcess) -> None:
    async with aiohttp.ClientSession() as session:

        async def slow() -> int:
            async with session.get(f"{gateway_process.url}/delay/1.5") as resp:
                await resp.read()
                return resp.status

        tasks = [asyncio.create_task(slow()) for _ in range(20)]
        await asyncio.sleep(0.5)  # all 20 are in flight at the upstream
        gateway_process.signal(signal.SIGTERM)
        statuses = await asyncio.gather(*tasks)
    assert statuses == [200] * 20
    code = await asyncio.to_thread(gateway_process.process.wait, 10)
    assert code == 0


async def test_readiness_goes_down_during_drain(gateway_process: GatewayProcess) -> None:
    async with aiohttp.ClientSession() as session:
        slow = asyncio.create_task(session.get(f"{gateway_process.url}/delay/1.5"))
        await asyncio.sleep(0.3)
        gateway_process.signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        # The proxy port no longer accepts new connections.
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(f"{gateway_process.url}/x") as resp:
                await resp.read()
        response = await slow
        assert response.status == 200
        response.release()


async def test_two_workers_share_the_port(tmp_path: Path, upstream: Upstream) -> None:
    process = spawn_gateway(write_routes(tmp_path, upstream), tmp_path, GATEWAY_WORKERS="2")
    try:
        pids = process.worker_pids()
        assert len(pids) == 2
        async with aiohttp.ClientSession() as session:

            async def burst() -> None:
                for _ in range(20):
                    # A new connection each time, so the kernel spreads them over both workers.
                    async with session.get(
                        f"{process.url}/x", headers={"Connection": "close"}
                    ) as resp:
                        assert resp.status == 200

            await burst()
            # A worker that dies is replaced by the supervisor; the port keeps answering.
            os.kill(pids[0], signal.SIGKILL)
            for _ in range(50):
                replacement = process.worker_pids()
                if len(replacement) == 2 and pids[0] not in replacement:
                    break
                await asyncio.sleep(0.1)
            assert len(replacement) == 2
            assert pids[0] not in replacement
            await asyncio.sleep(0.5)
            await burst()
    finally:
        assert process.stop() == 0


async def test_sighup_reloads_routes_and_keeps_them_on_error(
    tmp_path: Path, upstream: Upstream
) -> None:
    routes = write_routes(tmp_path, upstream)
    process = spawn_gateway(routes, tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            routes.write_text(
                textwrap.dedent(
                    f"""
                    routes:
                      - id: only-new
                        uri: http://127.0.0.1:{upstream.port}
                        predicates: [Path=/new/**]
                    """
                )
            )
            process.signal(signal.SIGHUP)
            for _ in range(50):
                async with session.get(f"{process.url}/old") as resp:
                    if resp.status == 404:
                        break
                await asyncio.sleep(0.1)
            async with session.get(f"{process.url}/new/x") as resp:
                assert resp.status == 200
            routes.write_text("routes: [{id: broken, uri: 'nope://x'}]\n")
            process.signal(signal.SIGHUP)
            await asyncio.sleep(0.5)
            async with session.get(f"{process.url}/new/x") as resp:
                assert resp.status == 200  # the last good table is still serving
            async with session.get(f"{process.management_url}/actuator/health") as resp:
                health = await resp.json()
            assert "nope" in health["components"]["routes"]["details"]["lastError"]
    finally:
        assert process.stop() == 0


async def test_asyncio_event_loop_can_be_chosen(tmp_path: Path, upstream: Upstream) -> None:
    process = spawn_gateway(
        write_routes(tmp_path, upstream), tmp_path, GATEWAY_EVENT_LOOP="asyncio"
    )
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{process.url}/x") as resp:
            assert resp.status == 200
    finally:
        assert process.stop() == 0
