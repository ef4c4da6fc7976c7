"""The mesh client's CLIENT span per attempt, recorded by the OpenTelemetry SDK's in-memory
exporter: parent links (the inbound trace, or the active span), the attributes the gateway's
client spans carry, error status, a retry as a second span, and the outbound ``traceparent``
naming the attempt's span. Without an SDK: a new span id per attempt in the caller's trace.

The SDK's tracer is passed to the client, so nothing here touches OpenTelemetry's global state.
Real aiohttp servers on 127.0.0.1 answer the calls."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

from discovery.instance import ServiceInstance
from discovery.mesh import CallContext, MeshClient, call_context
from discovery.static import StaticRegistry
from discovery.traceparent import parse_traceparent
from tests.support.ports import free_port
from tests.support.upstream import serve

TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT = 0x00F067AA0BA902B7
INBOUND = CallContext(trace=(TRACE, PARENT, True), tracestate="vendor=1", lane="canary")


@dataclass
class Billing:
    status: int = 200
    port: int = 0
    runner: web.AppRunner | None = None
    traceparents: list[str] = field(default_factory=list)


@pytest.fixture
async def billing() -> AsyncIterator[Billing]:
    state = Billing()

    async def handle(request: web.Request) -> web.Response:
        state.traceparents.append(request.headers.get("traceparent", ""))
        return web.json_response({"ok": True}, status=state.status)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    state.runner, state.port = await serve(app)
    yield state
    await state.runner.cleanup()


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> trace.Tracer:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test")


def client(instances: list[ServiceInstance], tracer: trace.Tracer | None = None) -> MeshClient:
    return MeshClient(StaticRegistry({"billing": instances}), rng=random.Random(7), tracer=tracer)


def sent(billing: Billing, index: int = -1) -> tuple[int, int, bool]:
    parsed = parse_traceparent(billing.traceparents[index])
    assert parsed is not None, billing.traceparents
    return parsed


def ctx(span: ReadableSpan) -> SpanContext:
    context = span.get_span_context()
    assert context is not None
    return context


def spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return list(exporter.get_finished_spans())


async def test_an_attempt_is_a_client_span_under_the_inbound_trace(
    billing: Billing, exporter: InMemorySpanExporter, tracer: trace.Tracer
) -> None:
    instance = ServiceInstance("billing", "billing-1", "127.0.0.1", billing.port)
    async with client([instance], tracer) as mesh:
        with call_context(INBOUND):
            async with mesh.get("http://billing/invoices/7") as resp:
                assert resp.status == 200
    [span] = spans(exporter)
    context = ctx(span)
    assert span.kind is SpanKind.CLIENT
    assert span.name == "GET"
    assert context.trace_id == TRACE
    assert span.parent is not None and span.parent.span_id == PARENT
    assert span.parent.is_remote
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": billing.port,
        "gateway.service": "billing",
        "gateway.instance": "billing-1",
        "http.response.status_code": 200,
    }
    assert span.status.status_code is StatusCode.UNSET
    # The callee's parent is this span; the inbound tracestate goes on with it.
    assert sent(billing) == (TRACE, context.span_id, True)
    assert context.trace_state.to_header() == "vendor=1"


async def test_a_retry_is_a_second_span_and_a_failure_is_an_error(
    billing: Billing, exporter: InMemorySpanExporter, tracer: trace.Tracer
) -> None:
    # Round robin from the first instance: nothing listens there (a connect error, retried).
    dead = ServiceInstance("billing", "dead", "127.0.0.1", free_port())
    live = ServiceInstance("billing", "live", "127.0.0.1", billing.port)
    async with client([dead, live], tracer) as mesh:
        with call_context(INBOUND):
            for _ in range(2):  # whichever the balancer starts with, one call meets both
                async with mesh.get("http://billing/x") as resp:
                    assert resp.status == 200
    recorded = spans(exporter)
    failed = [s for s in recorded if s.status.status_code is StatusCode.ERROR]
    assert failed, [s.attributes for s in recorded]
    first = failed[0]
    assert (first.attributes or {})["gateway.instance"] == "dead"
    assert "error.type" in (first.attributes or {})
    assert "http.response.status_code" not in (first.attributes or {})
    retried = [s for s in recorded if (s.attributes or {}).get("http.request.resend_count")]
    assert retried and (retried[0].attributes or {})["gateway.retry.attempt"] == 2
    assert (retried[0].attributes or {})["gateway.instance"] == "live"
    for span in recorded:  # every attempt a child of the inbound parent, not of each other
        assert span.parent is not None and span.parent.span_id == PARENT
        assert ctx(span).trace_id == TRACE
    answered = {ctx(s).span_id for s in recorded if s not in failed}
    assert {sent(billing, i)[1] for i in range(len(billing.traceparents))} == answered


async def test_a_5xx_answer_is_an_error_span(
    billing: Billing, exporter: InMemorySpanExporter, tracer: trace.Tracer
) -> None:
    billing.status = 503
    instance = ServiceInstance("billing", "billing-1", "127.0.0.1", billing.port)
    async with client([instance], tracer) as mesh, mesh.get("http://billing/x") as resp:
        assert resp.status == 503
    [span] = spans(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["http.response.status_code"] == 503
    assert span.parent is None  # no inbound trace and no active span: the call starts one
    assert sent(billing) == (
        ctx(span).trace_id,
        ctx(span).span_id,
        True,
    )


async def test_the_active_span_is_the_parent(
    billing: Billing, exporter: InMemorySpanExporter, tracer: trace.Tracer
) -> None:
    instance = ServiceInstance("billing", "billing-1", "127.0.0.1", billing.port)
    async with client([instance], tracer) as mesh:
        with call_context(INBOUND), tracer.start_as_current_span("handler") as handler:
            async with mesh.get("http://billing/x"):
                pass
    client_span = next(s for s in spans(exporter) if s.kind is SpanKind.CLIENT)
    own = handler.get_span_context()
    assert client_span.parent is not None and client_span.parent.span_id == own.span_id
    assert ctx(client_span).trace_id == own.trace_id


async def test_a_direct_host_gets_a_span_without_service_attributes(
    billing: Billing, exporter: InMemorySpanExporter, tracer: trace.Tracer
) -> None:
    async with client([], tracer) as mesh, mesh.get(f"http://127.0.0.1:{billing.port}/x"):
        pass
    [span] = spans(exporter)
    attributes = dict(span.attributes or {})
    assert attributes["server.port"] == billing.port
    assert "gateway.service" not in attributes and "gateway.instance" not in attributes


@pytest.mark.parametrize("tracer", [None, trace.NoOpTracer()], ids=["default", "no-op"])
async def test_without_an_sdk_each_attempt_has_a_new_span_id_in_the_trace(
    billing: Billing, tracer: trace.Tracer | None
) -> None:
    instance = ServiceInstance("billing", "billing-1", "127.0.0.1", billing.port)
    async with client([instance], tracer) as mesh:
        with call_context(INBOUND):
            for _ in range(2):
                async with mesh.get("http://billing/x"):
                    pass
    first, second = sent(billing, 0), sent(billing, 1)
    assert first[0] == second[0] == TRACE and first[2] and second[2]
    assert len({first[1], second[1], PARENT}) == 3
