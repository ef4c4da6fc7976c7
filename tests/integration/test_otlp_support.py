"""The tracing test support proves itself with the real OpenTelemetry SDK and no gateway: a client
span propagated over W3C headers to the traced upstream comes back through the OTLP receiver as
one trace, and an unhealthy receiver never breaks the service that exports to it. If these fail,
a failing gateway tracing test says nothing about the gateway."""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from opentelemetry import baggage, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ResourceProto
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tests.support.otlp import OtlpReceiver, ReceivedSpan, loopback_exporter
from tests.support.traced_upstream import TracedUpstream


@pytest.fixture
async def traced(receiver: OtlpReceiver) -> AsyncIterator[TracedUpstream]:
    # Depends on the receiver so it stops first: its shutdown exports what is still queued.
    server = await TracedUpstream("svc-a", receiver.traces_url).start()
    yield server
    await server.stop()


@pytest.fixture
async def client_provider(receiver: OtlpReceiver) -> AsyncIterator[TracerProvider]:
    """The caller's own SDK pipeline, gzip-compressed so the receiver's decompression is on the
    path (the upstream's exporter sends plain protobuf)."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": "client"}), shutdown_on_exit=False
    )
    exporter = loopback_exporter(receiver.traces_url, compression=Compression.Gzip)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    yield provider
    # In a thread: the final export is answered by the receiver in this event loop.
    await asyncio.to_thread(provider.shutdown)


def propagator() -> CompositePropagator:
    return CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


def only(spans: list[ReceivedSpan], service: str, kind: str) -> ReceivedSpan:
    matching = [s for s in spans if s.service == service and s.kind == kind]
    assert len(matching) == 1, [s.summary() for s in spans]
    return matching[0]


async def test_client_span_and_upstream_server_span_form_one_trace(
    receiver: OtlpReceiver,
    traced: TracedUpstream,
    client_provider: TracerProvider,
    session: aiohttp.ClientSession,
) -> None:
    tracer = client_provider.get_tracer(__name__)
    # Contexts are passed explicitly, never attached, like the support code itself.
    outer = baggage.set_baggage("tenant", "acme", context=Context())
    span = tracer.start_span("GET /orders", context=outer, kind=SpanKind.CLIENT)
    headers: dict[str, str] = {}
    propagator().inject(headers, context=trace.set_span_in_context(span, outer))
    assert set(headers) == {"traceparent", "baggage"}
    async with session.get(f"{traced.url}/orders?id=7", headers=headers) as response:
        assert response.status == 200
        assert response.headers["X-Upstream"] == "svc-a"
        answer = await response.json()
    span.end()

    assert answer == {
        "upstream": "svc-a",
        "traceparent": headers["traceparent"],
        "baggage": {"tenant": "acme"},
    }
    wanted = {("client", "CLIENT"), ("svc-a", "SERVER")}
    spans = await receiver.wait_for(lambda got: {(s.service, s.kind) for s in got} >= wanted)
    client = only(spans, "client", "CLIENT")
    server = only(spans, "svc-a", "SERVER")
    context = span.get_span_context()
    assert client.trace_id == f"{context.trace_id:032x}"
    assert client.span_id == f"{context.span_id:016x}"
    assert client.parent_span_id is None
    # Flags: sampled, plus (W3C Trace Context level 2) the random-trace-id bit the SDK sets.
    assert headers["traceparent"].startswith(f"00-{client.trace_id}-{client.span_id}-")
    assert int(headers["traceparent"][-2:], 16) & 0x01
    assert server.trace_id == client.trace_id
    assert server.parent_span_id == client.span_id
    assert server.span_id not in (client.span_id, None)
    assert server.name == "GET /orders"
    assert server.attributes == {
        "http.request.method": "GET",
        "url.path": "/orders",
        "http.response.status_code": 200,
    }
    assert server.status_code == "UNSET"
    assert client.start_ns <= server.start_ns <= server.end_ns <= client.end_ns
    assert receiver.problems == []


async def test_fail_next_answers_503_once_and_marks_that_span_as_error(
    receiver: OtlpReceiver, traced: TracedUpstream, session: aiohttp.ClientSession
) -> None:
    traced.fail_next = 1
    statuses = []
    for _ in range(2):
        async with session.post(f"{traced.url}/pay", data=b"x") as response:
            statuses.append(response.status)
    assert statuses == [503, 200]
    assert traced.received == 2
    await traced.flush()
    spans = await receiver.wait_for(lambda got: len(got) == 2)
    # Without a traceparent each request starts its own trace as a root span.
    assert [s.parent_span_id for s in spans] == [None, None]
    assert spans[0].trace_id != spans[1].trace_id
    assert [(s.status_code, s.attributes["http.response.status_code"]) for s in spans] == [
        ("ERROR", 503),
        ("UNSET", 200),
    ]
    assert {s.name for s in spans} == {"POST /pay"}


async def test_unhealthy_receiver_does_not_break_the_exporting_service(
    receiver: OtlpReceiver,
    traced: TracedUpstream,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.fail_with = 503
    caplog.set_level(logging.WARNING, logger="opentelemetry")
    async with session.get(f"{traced.url}/health") as response:
        assert response.status == 200
        assert (await response.json())["upstream"] == "svc-a"

    # The SDK's worker thread exports, is refused, retries, gives up and only logs.
    for _ in range(500):  # 10 s
        if any("Failed to export spans" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail(f"the SDK logged no failed export; receiver saw {receiver.summary()}")
    assert receiver.requests >= 1
    assert receiver.spans == []
    # A second request still succeeds: a failed export leaves the pipeline working.
    async with session.get(f"{traced.url}/health") as response:
        assert response.status == 200


def _request_bytes() -> bytes:
    def attr(key: str, value: AnyValue) -> KeyValue:
        return KeyValue(key=key, value=value)

    span = Span(
        trace_id=bytes(range(16)),
        span_id=bytes(range(8)),
        name="handcrafted",
        kind=Span.SPAN_KIND_PRODUCER,
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        attributes=[
            attr("s", AnyValue(string_value="v")),
            attr("b", AnyValue(bool_value=True)),
            attr("i", AnyValue(int_value=-3)),
            attr("d", AnyValue(double_value=0.5)),
            attr("a", AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1)]))),
        ],
    )
    resource = ResourceProto(attributes=[attr("service.name", AnyValue(string_value="raw"))])
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=[span])])]
    )
    return bytes(request.SerializeToString())


async def test_receiver_decodes_gzip_and_refuses_what_it_cannot_read(
    receiver: OtlpReceiver, session: aiohttp.ClientSession
) -> None:
    protobuf = {"Content-Type": "application/x-protobuf"}
    body = gzip.compress(_request_bytes())
    gzipped = {**protobuf, "Content-Encoding": "gzip"}
    async with session.post(receiver.traces_url, data=body, headers=gzipped) as response:
        assert response.status == 200
        assert response.content_type == "application/x-protobuf"
        assert await response.read() == b""  # an empty ExportTraceServiceResponse
    assert receiver.spans == [
        ReceivedSpan(
            trace_id=bytes(range(16)).hex(),
            span_id=bytes(range(8)).hex(),
            parent_span_id=None,
            name="handcrafted",
            kind="PRODUCER",
            service="raw",
            attributes={"s": "v", "b": True, "i": -3, "d": 0.5, "a": [1]},
            status_code="UNSET",
            start_ns=1,
            end_ns=2,
        )
    ]

    json = {"Content-Type": "application/json"}
    async with session.post(receiver.traces_url, data=b"{}", headers=json) as response:
        assert response.status == 415
    async with session.post(receiver.traces_url, data=b"\xff\xff", headers=protobuf) as response:
        assert response.status == 400
    assert receiver.requests == 3
    assert len(receiver.problems) == 2

    with pytest.raises(AssertionError, match="refused: unsupported Content-Type"):
        await receiver.wait_for(lambda got: len(got) > 1, timeout=0.1)
    receiver.clear()
    assert (receiver.spans, receiver.requests, receiver.problems) == ([], 0, [])
