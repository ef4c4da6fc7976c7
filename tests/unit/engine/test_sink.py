"""SinkPool against real sockets on 127.0.0.1: a scripted shadow answers each request as the
test says, and counts the connections and bytes it got."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from gateway.engine.sink import SWEEP, SinkOutcome, SinkPool, SinkSettings

GET = b"GET /x HTTP/1.1\r\nHost: shadow\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]  # False: stop serving
# (The nth request on its connection is in ``Shadow.nth``.)


class Shadow:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.received: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.nth = 0

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> Shadow:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.nth = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                self.received.append(head + body)
                self.nth += 1
                if not await self.answer(head, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class Outcomes:
    def __init__(self) -> None:
        self.seen: list[tuple[SinkOutcome, str]] = []
        self.changed = asyncio.Event()

    def __call__(self, outcome: SinkOutcome, why: str) -> None:
        self.seen.append((outcome, why))
        self.changed.set()

    async def wait(self, count: int, timeout: float = 5.0) -> list[SinkOutcome]:
        async with asyncio.timeout(timeout):
            while len(self.seen) < count:
                self.changed.clear()
                await self.changed.wait()
        return [outcome for outcome, _ in self.seen]


async def ok(head: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(OK)
    return True


async def test_copies_reuse_one_keep_alive_connection() -> None:
    pool, told = SinkPool(), Outcomes()
    async with Shadow(ok) as shadow:
        for n in range(5):
            pool.send("127.0.0.1", shadow.port, GET, (), head_request=False, timeout=5, done=told)
            assert await told.wait(n + 1) == [SinkOutcome.ANSWERED] * (n + 1)
        assert shadow.connections == 1
        assert pool.inflight == 0
        assert pool.idle_count() == 1
        pool.close()


async def test_the_body_goes_out_whole_after_the_head() -> None:
    pool, told = SinkPool(), Outcomes()
    head = b"POST /x HTTP/1.1\r\nHost: shadow\r\nContent-Length: 11\r\n\r\n"
    async with Shadow(ok) as shadow:
        pool.send(
            "127.0.0.1",
            shadow.port,
            head,
            [b"hello", b" ", b"world"],
            head_request=False,
            timeout=5,
            done=told,
        )
        assert await told.wait(1) == [SinkOutcome.ANSWERED]
        assert shadow.received == [head + b"hello world"]
        pool.close()


async def test_an_answer_delimited_by_the_close_counts_and_the_connection_is_not_kept() -> None:
    async def close_delimited(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        return False

    pool, told = SinkPool(), Outcomes()
    async with Shadow(close_delimited) as shadow:
        for n in range(2):
            pool.send("127.0.0.1", shadow.port, GET, (), head_request=False, timeout=5, done=told)
            assert await told.wait(n + 1) == [SinkOutcome.ANSWERED] * (n + 1)
        assert shadow.connections == 2
        assert pool.idle_count() == 0
        pool.close()


async def test_connection_close_on_a_framed_answer_is_honoured() -> None:
    async def framed_close(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        return False

    pool, told = SinkPool(), Outcomes()
    async with Shadow(framed_close) as shadow:
        pool.send("127.0.0.1", shadow.port, GET, (), head_request=False, timeout=5, done=told)
        assert await told.wait(1) == [SinkOutcome.ANSWERED]
        assert pool.idle_count() == 0
        pool.close()


async def test_a_head_answer_is_complete_at_its_head_and_the_connection_carries_on() -> None:
    async def head_then_get(head: bytes, writer: asyncio.StreamWriter) -> bool:
        if head.startswith(b"HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        else:
            writer.write(OK)
        return True

    pool, told = SinkPool(), Outcomes()
    async with Shadow(head_then_get) as shadow:
        head = b"HEAD /x HTTP/1.1\r\nHost: shadow\r\n\r\n"
        pool.send("127.0.0.1", shadow.port, head, (), head_request=True, timeout=5, done=told)
        assert await told.wait(1) == [SinkOutcome.ANSWERED]
        pool.send("127.0.0.1", shadow.port, GET, (), head_request=False, timeout=5, done=told)
        assert await told.wait(2) == [SinkOutcome.ANSWERED] * 2
        assert shadow.connections == 1
        pool.close()


async def test_an_interim_answer_is_not_the_answer() -> None:
    async def continue_first(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(OK)
        return True

    pool, told = SinkPool(), Outcomes()
    async with Shadow(continue_first) as shadow:
        pool.send("127.0.0.1", shadow.port, GET, (), head_request=False, timeout=5, done=told)
        assert await told.wait(1) == [SinkOutcome.ANSWERED]
        await asyncio.sleep(0.1)
        assert len(told.seen) == 1
        pool.send("127.0.0.1", shadow.port, GET, (), head_request=False, timeout=5, done=told)
        assert await told.wait(2) == [SinkOutcome.ANSWERED] * 2
        assert shadow.connections == 1
        pool.close()


async def test_a_silent_shadow_times_out_by_the_deadline() -> None:
    async def silent(head: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(10)
        return False

    pool, told = SinkPool(), Outcomes()
    async with Shadow(silent) as shadow:
        loop = asyncio.get_running_loop()
        started = loop.time()
        pool.send("127.0.0.1", shadow.port, GET, (), head_request=False, timeout=0.2, done=told)
        assert await told.wait(1) == [SinkOutcome.TIMED_OUT]
        assert 0.2 <= loop.time() - started < 0.2 + SWEEP + 0.3
        assert pool.inflight == 0
        assert pool.idle_count() == 0
        pool.close()


async def test_a_refused_connection_fails() -> None:
    async with Shadow(ok) as shadow:
        port = shadow.port
    pool, told = SinkPool(), Outcomes()
    pool.send("127.0.0.1", port, GET, (), head_request=False, timeout=5, done=told)
    assert await told.wait(1) == [SinkOutcome.FAILED]
    assert "cannot connect" in told.seen[0][1]
    assert pool.inflight == 0


async def test_a_kept_connection_the_shadow_closed_is_retried_on_a_fresh_one() -> None:
    shadow: Shadow

    async def first_only(head: bytes, writer: asyncio.StreamWriter) -> bool:
        # A second request on a kept connection is read, then the connection is closed
        # unanswered: what a shadow closing an idle connection as it is picked looks like.
        if shadow.nth > 1:
            return False
        writer.write(OK)
        return True

    pool, told = SinkPool(), Outcomes()
    async with Shadow(first_only) as shadow:
        pool.send("127.0.0.1", shadow.port, GET, (), head_request=False, timeout=5, done=told)
        assert await told.wait(1) == [SinkOutcome.ANSWERED]
        pool.send("127.0.0.1", shadow.port, GET, (), head_request=False, timeout=5, done=told)
        assert await told.wait(2) == [SinkOutcome.ANSWERED] * 2
        assert shadow.connections == 2
        assert len(shadow.received) == 3  # the lost one, then its retry
        pool.close()


async def test_a_fresh_connection_lost_before_the_answer_is_not_retried() -> None:
    async def never(head: bytes, writer: asyncio.StreamWriter) -> bool:
        return False

    pool, told = SinkPool(), Outcomes()
    async with Shadow(never) as shadow:
        pool.send("127.0.0.1", shadow.port, GET, (), head_request=False, timeout=5, done=told)
        assert await told.wait(1) == [SinkOutcome.FAILED]
        assert shadow.connections == 1
        pool.close()


async def test_a_malformed_answer_fails_and_the_connection_is_dropped() -> None:
    async def garbage(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        return True

    pool, told = SinkPool(), Outcomes()
    async with Shadow(garbage) as shadow:
        pool.send("127.0.0.1", shadow.port, GET, (), head_request=False, timeout=5, done=told)
        assert await told.wait(1) == [SinkOutcome.FAILED]
        assert "invalid response" in told.seen[0][1]
        assert pool.idle_count() == 0
        pool.close()


async def test_close_tells_every_copy_in_flight() -> None:
    async def silent(head: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(10)
        return False

    pool, told = SinkPool(), Outcomes()
    async with Shadow(silent) as shadow:
        for _ in range(3):
            pool.send("127.0.0.1", shadow.port, GET, (), head_request=False, timeout=5, done=told)
        await asyncio.sleep(0.1)
        pool.close()
        assert await told.wait(3) == [SinkOutcome.FAILED] * 3
        assert pool.inflight == 0
        pool.send("127.0.0.1", shadow.port, GET, (), head_request=False, timeout=5, done=told)
        assert await told.wait(4) == [SinkOutcome.FAILED] * 4


async def test_idle_connections_are_closed_after_the_idle_timeout() -> None:
    pool, told = SinkPool(SinkSettings(idle_timeout=0.2)), Outcomes()
    async with Shadow(ok) as shadow:
        pool.send("127.0.0.1", shadow.port, GET, (), head_request=False, timeout=5, done=told)
        await told.wait(1)
        assert pool.idle_count() == 1
        await asyncio.sleep(0.6)
        assert pool.idle_count() == 0
        pool.close()


@pytest.mark.parametrize("status", [204, 304])
async def test_bodiless_statuses_complete_at_the_head(status: int) -> None:
    async def bodiless(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(f"HTTP/1.1 {status} X\r\n\r\n".encode())
        return True

    pool, told = SinkPool(), Outcomes()
    async with Shadow(bodiless) as shadow:
        for n in range(2):
            pool.send("127.0.0.1", shadow.port, GET, (), head_request=False, timeout=5, done=told)
            assert await told.wait(n + 1) == [SinkOutcome.ANSWERED] * (n + 1)
        assert shadow.connections == 1
        pool.close()
