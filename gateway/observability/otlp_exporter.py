"""A lean OTLP/HTTP span exporter: the OpenTelemetry SDK's ``SpanExporter`` interface, with the
protobuf written directly.

The stock exporter builds a tree of generated protobuf objects per span and hashes the
resource (a JSON dump) per span to group them; at a gateway's span rate that encoding was half
of the process's CPU and, holding the GIL on the export thread, it stalled the event loop. The
wire format for what the gateway records (spans with string/int/bool/float attributes and a
status, one resource, one scope) is small and stable, so it is encoded here in one pass, the
resource and scope once.

Sending is :mod:`gateway.observability.otlp_sender`'s, which the exporter process shares.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from gateway.observability.otlp_sender import OtlpHttpSender

# -- protobuf wire format -------------------------------------------------------------------------
# One span's encoding ran ~22 µs on the export thread, holding the GIL the event loop needs; most
# of it was building the same small byte strings again: varints below 128, tags, attribute keys.
_ONE_BYTE = tuple(bytes((value,)) for value in range(128))


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _ONE_BYTE[value]
    if value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


@lru_cache(maxsize=64)
def _tag(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def _bytes_field(field: int, payload: bytes) -> bytes:
    return _tag(field, 2) + _varint(len(payload)) + payload


def _str_field(field: int, text: str) -> bytes:
    return _bytes_field(field, text.encode("utf-8"))


_STRING = _tag(1, 2)  # AnyValue.string_value
_TRUE = _tag(2, 0) + b"\x01"
_FALSE = _tag(2, 0) + b"\x00"
_INT = _tag(3, 0)
_DOUBLE = _tag(4, 1)
_KEY_VALUE_VALUE = _tag(2, 2)  # KeyValue.value


def _any_value(value: Any) -> bytes:
    """AnyValue: string 1, bool 2, int 3, double 4, array 5."""
    if type(value) is str:  # the usual case first
        encoded = value.encode("utf-8")
        return _STRING + _varint(len(encoded)) + encoded
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    if isinstance(value, int):
        return _INT + _varint(value & 0xFFFFFFFFFFFFFFFF)  # int64, two's complement
    if isinstance(value, float):
        return _DOUBLE + struct.pack("<d", value)
    if isinstance(value, str):
        return _str_field(1, value)
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        values = b"".join(_bytes_field(1, _any_value(item)) for item in value)
        return _bytes_field(5, values)
    return _str_field(1, str(value))


@lru_cache(maxsize=512)
def _key(key: str) -> bytes:
    """``KeyValue.key``, encoded once per attribute name (the gateway uses a dozen)."""
    return _str_field(1, key)


def _attributes(field: int, attributes: Mapping[str, Any] | None) -> bytes:
    """repeated KeyValue {string key = 1; AnyValue value = 2}."""
    if not attributes:
        return b""
    tag = _tag(field, 2)
    out = []
    for key, value in attributes.items():
        encoded = _any_value(value)
        pair = _key(key) + _KEY_VALUE_VALUE + _varint(len(encoded)) + encoded
        out.append(tag + _varint(len(pair)) + pair)
    return b"".join(out)


def encode_span_fields(
    trace_id: int,
    span_id: int,
    trace_state: str,
    parent_span_id: int,
    parent_remote: bool,
    name: str,
    kind: int,
    start_ns: int,
    end_ns: int,
    attributes: Mapping[str, Any] | None,
    status_code: int,
    status_message: str | None,
    trace_flags: int,
) -> bytes:
    """One ``opentelemetry.proto.trace.v1.Span`` from its fields (``kind``: the API's enum value;
    ``parent_span_id`` 0 for a root). The gateway's own spans are encoded from these directly,
    without building an SDK span first."""
    out = [
        _bytes_field(1, trace_id.to_bytes(16, "big")),
        _bytes_field(2, span_id.to_bytes(8, "big")),
    ]
    if trace_state:
        out.append(_str_field(3, trace_state))
    if parent_span_id:
        out.append(_bytes_field(4, parent_span_id.to_bytes(8, "big")))
    out.append(_str_field(5, name))
    out.append(_tag(6, 0) + _varint(kind + 1))  # API enum + 1 = proto enum
    out.append(_tag(7, 1) + struct.pack("<Q", start_ns))
    out.append(_tag(8, 1) + struct.pack("<Q", end_ns))
    out.append(_attributes(9, attributes))
    if status_code:
        message = _str_field(2, status_message) if status_message else b""
        out.append(_bytes_field(15, message + _tag(3, 0) + _varint(status_code)))
    flags = 0x100 | (0x200 if parent_remote else 0)
    out.append(_tag(16, 5) + struct.pack("<I", flags | trace_flags))
    return b"".join(out)


def encode_span(span: ReadableSpan) -> bytes:
    """One ``opentelemetry.proto.trace.v1.Span``."""
    context = span.get_span_context()
    assert context is not None
    parent = span.parent
    status = span.status
    return encode_span_fields(
        context.trace_id,
        context.span_id,
        context.trace_state.to_header() if context.trace_state else "",
        parent.span_id if parent is not None else 0,
        parent is not None and parent.is_remote,
        span.name,
        span.kind.value,
        span.start_time or 0,
        span.end_time or 0,
        span.attributes,
        status.status_code.value,
        status.description,
        int(context.trace_flags),
    )


def encode_resource(attributes: Mapping[str, Any]) -> bytes:
    """``ResourceSpans.resource`` (field 1), ready to prefix a group of spans."""
    return _bytes_field(1, _attributes(1, attributes))


def encode_scope(name: str, version: str | None) -> bytes:
    """``ScopeSpans.scope`` (field 1)."""
    scope = _str_field(1, name)
    if version:
        scope += _str_field(2, version)
    return _bytes_field(1, scope)


def scope_span(encoded_span: bytes) -> bytes:
    """A span as one entry of ``ScopeSpans.spans`` (field 2): what :func:`request_body` joins."""
    return _bytes_field(2, encoded_span)


def request_body(resource: bytes, scope: bytes, spans: bytes) -> bytes:
    """An ``ExportTraceServiceRequest`` of one resource and one scope; ``spans`` is the
    concatenation of :func:`scope_span` entries."""
    return _bytes_field(1, resource + _bytes_field(2, scope + spans))


def encode_request(spans: Sequence[ReadableSpan]) -> bytes:
    """An ``ExportTraceServiceRequest``, spans grouped by resource and scope (the gateway has
    one of each; the grouping keeps the encoding right for any)."""
    groups: dict[tuple[int, int], list[ReadableSpan]] = {}
    for span in spans:
        key = (id(span.resource), id(span.instrumentation_scope))
        groups.setdefault(key, []).append(span)
    out = []
    for members in groups.values():
        first = members[0]
        scope_info = first.instrumentation_scope
        scope = b""
        if scope_info is not None:
            scope = encode_scope(scope_info.name, scope_info.version)
        out.append(
            request_body(
                encode_resource(first.resource.attributes),
                scope,
                b"".join(scope_span(encode_span(span)) for span in members),
            )
        )
    return b"".join(out)


# -- the SDK adapter ---------------------------------------------------------------------------
class LeanOtlpExporter(SpanExporter):
    """The SDK's exporter interface over :class:`OtlpHttpSender`, for the batch processor."""

    def __init__(self, sender: OtlpHttpSender) -> None:
        self._sender = sender
        self._closed = False

    @property
    def failures(self) -> int:
        return self._sender.failures

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._closed:
            return SpanExportResult.FAILURE
        ok = self._sender.post(encode_request(spans), len(spans))
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._closed = True
        self._sender.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
