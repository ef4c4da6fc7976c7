"""The hand-written OTLP encoding decodes, with the official protobuf definitions, to exactly
what the SDK recorded."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from gateway.observability.otlp_exporter import encode_request
from gateway.observability.otlp_sender import parse_headers


class Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def test_encoding_round_trips_through_the_official_protobuf() -> None:
    keep = Keep()
    provider = TracerProvider(resource=Resource.create({"service.name": "edge", "k": 3}))
    provider.add_span_processor(SimpleSpanProcessor(keep))
    tracer = provider.get_tracer("meshgate", "1.2")
    remote = SpanContext(
        0x4BF92F3577B34DA6A3CE929D0E0E4736,
        0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "x1")]),
    )
    server = tracer.start_span(
        "GET /orders/**",
        context=set_span_in_context(NonRecordingSpan(remote)),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "GET", "port": 8080, "ok": True, "ratio": 0.25},
        start_time=1_700_000_000_000_000_000,
    )
    client = tracer.start_span(
        "GET", context=set_span_in_context(server), kind=SpanKind.CLIENT,
        attributes={"tags": ["a", "b"], "negative": -5, "unicode": "é✓"},
    )  # fmt: skip
    client.set_status(Status(StatusCode.ERROR, "upstream answered 503"))
    client.end()
    server.end(end_time=1_700_000_000_500_000_000)

    decoded = ExportTraceServiceRequest.FromString(encode_request(keep.spans))
    [resource_spans] = decoded.resource_spans
    resource = {kv.key: kv.value for kv in resource_spans.resource.attributes}
    assert resource["service.name"].string_value == "edge"
    assert resource["k"].int_value == 3
    [scope_spans] = resource_spans.scope_spans
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("meshgate", "1.2")
    by_name = {s.name: s for s in scope_spans.spans}
    got_server, got_client = by_name["GET /orders/**"], by_name["GET"]
    assert got_server.trace_id.hex() == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert got_server.parent_span_id.hex() == "00f067aa0ba902b7"
    assert got_server.trace_state == "vendor=x1"
    assert got_server.kind == 2  # SPAN_KIND_SERVER
    assert got_server.start_time_unix_nano == 1_700_000_000_000_000_000
    assert got_server.end_time_unix_nano == 1_700_000_000_500_000_000
    attributes = {kv.key: kv.value for kv in got_server.attributes}
    assert attributes["http.request.method"].string_value == "GET"
    assert attributes["port"].int_value == 8080
    assert attributes["ok"].bool_value is True
    assert attributes["ratio"].double_value == 0.25
    assert got_server.status.code == 0
    assert got_server.flags & 0x300 == 0x300  # has-is-remote, and the parent is remote
    assert got_client.parent_span_id == got_server.span_id
    assert got_client.trace_id == got_server.trace_id
    assert got_client.kind == 3  # SPAN_KIND_CLIENT
    client_attributes = {kv.key: kv.value for kv in got_client.attributes}
    assert [v.string_value for v in client_attributes["tags"].array_value.values] == ["a", "b"]
    assert client_attributes["negative"].int_value == -5
    assert client_attributes["unicode"].string_value == "é✓"
    assert got_client.status.code == 2  # STATUS_CODE_ERROR
    assert got_client.status.message == "upstream answered 503"


def test_headers_variable_is_parsed_and_url_decoded() -> None:
    assert parse_headers("api-key=a%20b, x-tenant=acme,bad") == {
        "api-key": "a b",
        "x-tenant": "acme",
    }


def test_varints_of_every_length_match_the_reference_encoding() -> None:
    from gateway.observability.otlp_exporter import _varint

    def reference(value: int) -> bytes:
        out = bytearray()
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    for value in (*range(0, 20_000), 2**21 - 1, 2**21, 2**35 + 7, 2**64 - 1):
        assert _varint(value) == reference(value), value
