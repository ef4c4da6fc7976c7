"""Traces across the hop (a real OTLP receiver and an OTel-instrumented upstream), request ids,
Prometheus metrics with exact counts, and the JSON access log."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import textwrap
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from opentelemetry import baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tests.support.gateway import spawn_gateway, start_gateway
from tests.support.otlp import OtlpReceiver, ReceivedSpan, loopback_exporter
from tests.support.ports import free_port
from tests.support.traced_upstream import TracedUpstream
from tests.support.upstream import start_upstream


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def write_routes(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.yml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("exporter", ["process", "thread"])
async def test_one_trace_client_gateway_two_attempts_upstream_with_baggage(
    exporter: str,
    tmp_path: Path,
    receiver: OtlpReceiver,
    session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    upstream = await TracedUpstream("orders", receiver.traces_url).start()
    upstream.fail_next = 1  # the first attempt gets a 503: one retry
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.traces_url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "edge")
    monkeypatch.setenv("GATEWAY_TRACING_EXPORTER", exporter)
    config = write_routes(
        tmp_path,
        f"""
        services:
          orders: [{{host: 127.0.0.1, port: {upstream.port}, id: orders-1}}]
        routes:
          - id: orders-route
            uri: lb://orders
            predicates: [Path=/orders/**]
            filters: [CircuitBreaker=orders-cb, Retry=2]
        """,
    )
    gw = await start_gateway(config)
    client_provider = TracerProvider(resource=Resource.create({"service.name": "client"}))
    client_provider.add_span_processor(SimpleSpanProcessor(loopback_exporter(receiver.traces_url)))
    propagator = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    try:
        tracer = client_provider.get_tracer("test")
        with tracer.start_as_current_span("client call", kind=SpanKind.CLIENT) as client_span:
            context = baggage.set_baggage("tenant", "acme")
            headers: dict[str, str] = {}
            propagator.inject(headers, context=context)
            async with session.get(f"{gw.url}/orders/42", headers=headers) as response:
                assert response.status == 200
                answer = await response.json()
        assert answer["baggage"] == {"tenant": "acme"}
        trace_id = f"{client_span.get_span_context().trace_id:032x}"
        client_id = f"{client_span.get_span_context().span_id:016x}"

        def complete(spans: list[ReceivedSpan]) -> bool:
            mine = [s for s in spans if s.trace_id == trace_id]
            return len([s for s in mine if s.service == "orders"]) == 2 and any(
                s.service == "edge" and s.kind == "SERVER" for s in mine
            )

        spans = [s for s in await receiver.wait_for(complete) if s.trace_id == trace_id]
        [server] = [s for s in spans if s.service == "edge" and s.kind == "SERVER"]
        attempts = sorted(
            (s for s in spans if s.service == "edge" and s.kind == "CLIENT"),
            key=lambda s: s.start_ns,
        )
        upstream_spans = [s for s in spans if s.service == "orders"]
        assert server.parent_span_id == client_id
        assert len(attempts) == 2
        assert all(a.parent_span_id == server.span_id for a in attempts)
        assert {u.parent_span_id for u in upstream_spans} == {a.span_id for a in attempts}
        by_parent = {u.parent_span_id: u for u in upstream_spans}
        assert by_parent[attempts[0].span_id].attributes["http.response.status_code"] == 503
        assert by_parent[attempts[1].span_id].attributes["http.response.status_code"] == 200

        assert server.attributes["http.request.method"] == "GET"
        assert server.attributes["url.path"] == "/orders/42"
        assert server.attributes["http.route"] == "/orders/**"
        assert server.attributes["http.response.status_code"] == 200
        assert server.attributes["gateway.route.id"] == "orders-route"
        assert server.attributes["gateway.circuit_breaker.state"] == "closed"
        assert server.attributes["network.peer.address"] == "127.0.0.1"
        assert "server.address" in server.attributes
        first, second = attempts
        assert first.attributes["http.response.status_code"] == 503
        assert first.status_code == "ERROR"
        assert "http.request.resend_count" not in first.attributes
        assert second.attributes["http.request.resend_count"] == 1
        assert second.attributes["gateway.service"] == "orders"
        assert second.attributes["gateway.instance"] == "orders-1"
        assert second.attributes["server.port"] == upstream.port
    finally:
        await gw.gateway.stop()
        await upstream.stop()
        client_provider.shutdown()


async def test_requests_carry_a_trace_upstream_and_a_dead_collector_costs_nothing(
    tmp_path: Path, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = await start_upstream("u")
    dead = free_port()  # nothing listens: every export fails
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{dead}")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    config = write_routes(tmp_path, f"routes: [{{id: all, uri: '{upstream.url}'}}]")
    gw = await start_gateway(config)
    try:
        slowest = 0.0
        for _ in range(200):
            started = time.perf_counter()
            async with session.get(f"{gw.url}/x") as response:
                assert response.status == 200
                echoed = await response.json()
            slowest = max(slowest, time.perf_counter() - started)
        # Exports (and their retries) run on the batch thread: no request waited for them.
        assert slowest < 0.5, slowest
        traceparent = {k.lower(): v for k, v in echoed["headers"]}["traceparent"]
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", traceparent)
    finally:
        started = time.perf_counter()
        await gw.gateway.stop()
        assert time.perf_counter() - started < 15  # shutdown gives up on the dead collector
        await upstream.runner.cleanup()


async def test_request_id_generated_kept_forwarded_echoed_and_in_error_bodies(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    upstream = await start_upstream("u")
    config = write_routes(
        tmp_path, f"routes: [{{id: all, uri: '{upstream.url}', predicates: [Path=/in/**]}}]"
    )
    gw = await start_gateway(config)
    try:
        async with session.get(f"{gw.url}/in/x") as response:
            generated = response.headers["X-Request-Id"]
            seen = lower_keys((await response.json())["headers"])
        assert seen["x-request-id"] == generated
        async with session.get(f"{gw.url}/in/x", headers={"X-Request-Id": "abc-123"}) as response:
            assert response.headers["X-Request-Id"] == "abc-123"
            assert lower_keys((await response.json())["headers"])["x-request-id"] == "abc-123"
        bad = "has spaces, {braces} and a-very-long-tail" + "x" * 200
        async with session.get(f"{gw.url}/in/x", headers={"X-Request-Id": bad}) as response:
            replaced = response.headers["X-Request-Id"]
            assert replaced != bad
            assert lower_keys((await response.json())["headers"])["x-request-id"] == replaced
        async with session.get(f"{gw.url}/nowhere") as response:
            assert response.status == 404
            assert (await response.json())["requestId"] == response.headers["X-Request-Id"]
    finally:
        await gw.gateway.stop()
        await upstream.runner.cleanup()


def lower_keys(pairs: list[list[str]]) -> dict[str, str]:
    return {k.lower(): v for k, v in pairs}


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` → value, labels in the order prometheus-client writes them."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


async def test_metrics_count_a_known_mix_exactly(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    upstream = await start_upstream("u")
    config = write_routes(
        tmp_path,
        f"""
        services:
          svc: [{{host: 127.0.0.1, port: {upstream.port}, id: u1}}]
        routes:
          - id: api
            uri: lb://svc
            predicates: [Path=/api/**]
            filters: [StripPrefix=1]
        """,
    )
    gw = await start_gateway(config)
    try:

        async def status(path: str) -> int:
            async with session.get(f"{gw.url}{path}") as response:
                await response.read()
                return response.status

        for _ in range(5):
            assert await status("/api/ok") == 200
        for _ in range(2):
            assert await status("/api/status/503") == 503
        for _ in range(3):
            assert await status("/missing") == 404
        async with session.get(f"{gw.management_url}/actuator/prometheus") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            values = samples(await response.text())
        api = 'meshgate_requests_total{lane="stable",method="GET",route="api",status='
        assert values[api + '"2xx"}'] == 5
        assert values[api + '"5xx"}'] == 2
        assert values['meshgate_requests_total{lane="",method="GET",route="",status="4xx"}'] == 3
        count = (
            'meshgate_request_duration_seconds_count{lane="stable",method="GET",route="api",'
            'status="2xx"}'
        )
        assert values[count] == 5
        ok = 'meshgate_upstream_attempts_total{instance="u1",outcome="2xx",service="svc"}'
        failed = 'meshgate_upstream_attempts_total{instance="u1",outcome="5xx",service="svc"}'
        assert values[ok] == 5
        assert values[failed] == 2
        assert values['meshgate_instances{service="svc"}'] == 1
        assert values["meshgate_requests_in_flight"] == 0
    finally:
        await gw.gateway.stop()
        await upstream.runner.cleanup()


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return samples(response.read().decode())


@pytest.mark.slow
async def test_metrics_totals_are_right_with_two_workers(tmp_path: Path) -> None:
    upstream = await start_upstream("u")
    config = write_routes(tmp_path, f"routes: [{{id: all, uri: '{upstream.url}'}}]")
    gateway = await asyncio.to_thread(spawn_gateway, config, tmp_path, GATEWAY_WORKERS="2")
    try:
        sent = 60

        def one() -> int:
            # A new connection each time, so the kernel spreads them over both workers.
            request = urllib.request.Request(f"{gateway.url}/x", headers={"Connection": "close"})
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)

        statuses = await asyncio.gather(*(asyncio.to_thread(one) for _ in range(sent)))
        assert set(statuses) == {200}
        key = 'meshgate_requests_total{lane="",method="GET",route="all",status="2xx"}'
        url = f"{gateway.management_url}/actuator/prometheus"
        deadline = time.monotonic() + 10
        total = 0.0
        while time.monotonic() < deadline:
            total = (await asyncio.to_thread(scrape, url)).get(key, 0.0)
            if total >= sent:
                break
            await asyncio.sleep(0.2)
        assert total == sent  # summed across both workers, nothing counted twice
    finally:
        await asyncio.to_thread(gateway.stop)
        await upstream.runner.cleanup()


@pytest.mark.slow
@pytest.mark.parametrize("enabled", [True, False])
async def test_access_log_is_one_json_line_per_request(tmp_path: Path, enabled: bool) -> None:
    upstream = await start_upstream("u")
    config = write_routes(tmp_path, f"routes: [{{id: all, uri: '{upstream.url}'}}]")
    env = {"GATEWAY_ACCESS_LOG": "true" if enabled else "false"}
    gateway = await asyncio.to_thread(spawn_gateway, config, tmp_path, **env)
    try:

        def get(path: str) -> int:
            with urllib.request.urlopen(f"{gateway.url}{path}", timeout=5) as response:
                return int(response.status)

        for path in ("/a", "/b?q=1", "/c%22quoted"):
            # In a thread: the upstream runs on this test's event loop.
            assert await asyncio.to_thread(get, path) == 200
        gateway.signal(signal.SIGTERM)
        assert await asyncio.to_thread(gateway.process.wait, 20) == 0
        lines: list[dict[str, Any]] = []
        for line in gateway.log().splitlines():
            if line.startswith("{") and '"requestId"' in line:
                lines.append(json.loads(line))
        if not enabled:
            assert lines == []
            return
        assert [entry["path"] for entry in lines] == ["/a", "/b", "/c%22quoted"]
        first = lines[0]
        assert set(first) == {
            "time", "requestId", "route", "method", "path", "status", "durationMs", "upstream",
            "bytesIn", "bytesOut", "client", "traceId", "spanId", "lane", "laneFallback",
            "principal",
        }  # fmt: skip
        assert first["route"] == "all"
        assert first["status"] == 200
        assert first["client"] == "127.0.0.1"
        assert first["upstream"] == f"127.0.0.1:{upstream.port}"
        assert first["bytesOut"] > 0
        assert first["principal"] is None  # no authentication filter on the route
    finally:
        await asyncio.to_thread(gateway.stop)
        await upstream.runner.cleanup()
