"""Spans through the exporter process (``GATEWAY_TRACING_EXPORTER=process``, the default): a
real child process posting to a real OTLP receiver, killed, stuck and orphaned on purpose."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from opentelemetry.trace import SpanKind

from gateway.observability.otlp_exporter import (
    encode_resource,
    encode_scope,
    encode_span_fields,
    scope_span,
)
from gateway.observability.span_pipe import ExporterConfig, SpanPipe
from tests.support.gateway import start_gateway
from tests.support.otlp import OtlpReceiver, ReceivedSpan
from tests.support.ports import free_port
from tests.support.upstream import start_upstream

TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736


def entry(index: int, padding: str = "") -> bytes:
    attributes: dict[str, object] = {"index": index}
    if padding:
        attributes["padding"] = padding
    return scope_span(
        encode_span_fields(
            TRACE, index + 1, "", 0, False, f"span-{index}", SpanKind.SERVER.value,
            1_000, 2_000, attributes, 0, None, 1,
        )
    )  # fmt: skip


def make_pipe(endpoint: str, **options: Any) -> SpanPipe:
    compression = options.pop("compression", None)
    assert compression is None or isinstance(compression, str)
    return SpanPipe(
        ExporterConfig(endpoint, {"authorization": "Bearer t0k"}, 3.0, compression),
        resource=encode_resource({"service.name": "pipe"}),
        scope=encode_scope("meshgate", "9.9"),
        **options,
    )


def count(n: int) -> Callable[[list[ReceivedSpan]], bool]:
    return lambda spans: len(spans) >= n


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether ``condition`` came true within ``timeout`` (it is polled: what it watches
    changes in another thread or process)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def kill_the_first_process(pipe: SpanPipe, receiver: OtlpReceiver) -> subprocess.Popen[bytes]:
    """One span through, then the exporter process that posted it SIGKILLed and reaped."""
    pipe.add(entry(0))
    await receiver.wait_for(count(1))
    first = pipe._child
    assert first is not None
    first.kill()
    first.wait()
    return first


@pytest.mark.parametrize("compression", [None, "gzip"])
async def test_batches_reach_the_collector_whole_with_headers(
    receiver: OtlpReceiver, compression: str | None
) -> None:
    pipe = make_pipe(
        receiver.traces_url, compression=compression, batch_size=10, schedule_delay=0.05
    )
    try:
        for index in range(25):
            pipe.add(entry(index))
        spans = await receiver.wait_for(count(25))
    finally:
        assert await asyncio.to_thread(pipe.shutdown, 5.0)
    assert sorted(s.name for s in spans) == sorted(f"span-{i}" for i in range(25))
    assert {s.service for s in spans} == {"pipe"}
    assert {s.scope for s in spans} == {"meshgate"}
    assert {s.kind for s in spans} == {"SERVER"}
    assert {s.trace_id for s in spans} == {f"{TRACE:032x}"}
    assert sorted(s.attributes["index"] for s in spans) == list(range(25))  # type: ignore[type-var]
    assert receiver.problems == []
    assert receiver.requests >= 3  # batches of at most 10
    assert {h["authorization"] for h in receiver.headers} == {"Bearer t0k"}
    encodings = {h.get("content-encoding", "identity") for h in receiver.headers}
    assert encodings == {compression or "identity"}
    assert (pipe.sent, pipe.lost, pipe.dropped) == (25, 0, 0)


async def test_shutdown_posts_what_is_queued_and_the_process_exits(
    receiver: OtlpReceiver,
) -> None:
    pipe = make_pipe(receiver.traces_url, batch_size=1000, schedule_delay=60)
    for index in range(5):
        pipe.add(entry(index))
    assert receiver.requests == 0  # neither a full batch nor the schedule yet
    assert await asyncio.to_thread(pipe.shutdown, 5.0)
    await receiver.wait_for(count(5))
    assert pipe._child is not None and pipe._child.returncode == 0


async def test_a_dead_exporter_process_is_started_again(receiver: OtlpReceiver) -> None:
    pipe = make_pipe(receiver.traces_url, batch_size=1, respawn_interval=0.0)
    try:
        first = await kill_the_first_process(pipe, receiver)
        pipe.add(entry(1))
        await receiver.wait_for(count(2))
        assert pipe._child is not None and pipe._child.pid != first.pid
    finally:
        assert await asyncio.to_thread(pipe.shutdown, 5.0)
    assert pipe.lost == 0


async def test_a_process_dying_again_at_once_costs_its_batches_not_a_respawn_loop(
    receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    pipe = make_pipe(receiver.traces_url, batch_size=1, respawn_interval=3600.0)
    try:
        first = await kill_the_first_process(pipe, receiver)
        for index in range(1, 4):
            pipe.add(entry(index))
        assert await until(lambda: pipe.lost >= 3, 5.0)
        assert pipe.lost == 3
        assert pipe._child is first  # not started again inside the interval
        # Its death is logged once, not once per batch lost while it stays dead.
        exits = [r for r in caplog.records if "exporter process exited" in r.getMessage()]
        assert len(exits) == 1
    finally:
        await asyncio.to_thread(pipe.shutdown, 2.0)


async def test_a_stuck_exporter_bounds_the_queue_and_never_blocks_the_caller() -> None:
    # A process that never reads: the pipe fills, the flusher thread blocks writing, the
    # queue stops at its bound and the caller's add() stays instant.
    def never_reads() -> subprocess.Popen[bytes]:
        return subprocess.Popen(["sleep", "60"], stdin=subprocess.PIPE)

    pipe = make_pipe(
        "http://127.0.0.1:9/v1/traces",
        batch_size=50,
        queue_size=200,
        schedule_delay=0.01,
        spawn=never_reads,
    )
    padding = "x" * 2048
    started = time.perf_counter()
    for index in range(3000):
        pipe.add(entry(index, padding))
        if index % 100 == 0:
            await asyncio.sleep(0.005)  # let the flusher run between bursts
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, elapsed
    assert len(pipe._queue) <= 200
    assert pipe.dropped > 2000
    assert pipe.sent < 3000 - pipe.dropped
    child = pipe._child
    started = time.perf_counter()
    assert await asyncio.to_thread(pipe.shutdown, 0.5) is False
    assert time.perf_counter() - started < 3.0
    assert child is not None and child.returncode is not None  # killed, not left behind


ORPHAN = textwrap.dedent(
    """
    import os, signal, sys, time
    sys.path.insert(0, sys.argv[2])
    from tests.integration.test_span_pipe import entry, make_pipe
    pipe = make_pipe(sys.argv[1], batch_size=1)
    pipe.add(entry(0))
    deadline = time.monotonic() + 10
    while pipe.sent == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    print(pipe._child.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_the_exporter_process_ends_with_a_killed_worker(receiver: OtlpReceiver) -> None:
    root = str(Path(__file__).parents[2].absolute())
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ORPHAN, receiver.traces_url, root,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(worker.communicate(), 20)
    assert worker.returncode == -9
    pid = int(out.split()[0])
    await receiver.wait_for(count(1))
    assert await until(lambda: gone(pid)), f"exporter process {pid} outlived its worker"


@pytest.mark.parametrize("exporter", ["process", "thread"])
async def test_a_continued_trace_and_a_failed_attempt_encode_alike_in_either_mode(
    exporter: str, tmp_path: Path, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = await start_upstream("u")
    dead = free_port()  # nothing listens: the attempt fails to connect
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.traces_url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("GATEWAY_TRACING_EXPORTER", exporter)
    config = tmp_path / "routes.yml"
    config.write_text(
        textwrap.dedent(
            f"""
            routes:
              - {{id: dead, uri: 'http://127.0.0.1:{dead}', predicates: [Path=/dead]}}
              - {{id: all, uri: '{upstream.url}'}}
            """
        )
    )
    gw = await start_gateway(config)
    try:
        headers = {
            "traceparent": f"00-{TRACE:032x}-00f067aa0ba902b7-01",
            "tracestate": "vendor=x1",
        }
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{gw.url}/x", headers=headers) as response:
                assert response.status == 200
            async with session.get(f"{gw.url}/dead") as response:
                assert response.status >= 500
        spans = await receiver.wait_for(count(4))
    finally:
        await gw.gateway.stop()
        await upstream.runner.cleanup()
    continued = {s.kind: s for s in spans if s.trace_id == f"{TRACE:032x}"}
    server, client = continued["SERVER"], continued["CLIENT"]
    assert server.parent_span_id == "00f067aa0ba902b7"
    assert client.parent_span_id == server.span_id
    assert server.trace_state == client.trace_state == "vendor=x1"
    assert server.flags == 0x300 | 0x01  # has-is-remote, remote parent, sampled
    assert client.flags == 0x100 | 0x01  # has-is-remote, local parent, sampled
    assert server.status_code == client.status_code == "UNSET"
    assert server.start_ns <= client.start_ns <= client.end_ns <= server.end_ns
    failed = {s.kind: s for s in spans if s.trace_id != f"{TRACE:032x}"}
    assert failed["SERVER"].parent_span_id is None
    assert failed["SERVER"].trace_state == ""
    assert failed["SERVER"].status_code == "ERROR"
    assert failed["SERVER"].attributes["gateway.route.id"] == "dead"
    assert failed["CLIENT"].status_code == "ERROR"
    assert failed["CLIENT"].status_message  # why the connection failed
    assert "error.type" in failed["CLIENT"].attributes
