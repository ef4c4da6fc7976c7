"""A lean OTLP/HTTP span exporter: the OpenTelemetry SDK's ``SpanExporter`` interface, with the
protobuf written directly.

The stock exporter builds a tree of generated protobuf objects per span and hashes the
resource (a JSON dump) per span to group them; at a gateway's span rate that encoding was half
of the process's CPU and, holding the GIL on the export thread, it stalled the event loop. The
wire format for what the gateway records (spans with string/int/bool/float attributes and a
status, one resource, one scope) is small and stable, so it is encoded here in one pass, the
resource and scope once.

Failures are not retried: the batch is dropped and counted, the next one tries again. An export
never waits on anything but its own socket, on the batch processor's thread.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import struct
import threading
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

log = logging.getLogger("meshgate.tracing")


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


def encode_span(span: ReadableSpan) -> bytes:
    """One ``opentelemetry.proto.trace.v1.Span``."""
    context = span.get_span_context()
    assert context is not None
    out = [
        _bytes_field(1, context.trace_id.to_bytes(16, "big")),
        _bytes_field(2, context.span_id.to_bytes(8, "big")),
    ]
    state = context.trace_state.to_header() if context.trace_state else ""
    if state:
        out.append(_str_field(3, state))
    parent = span.parent
    if parent is not None:
        out.append(_bytes_field(4, parent.span_id.to_bytes(8, "big")))
    out.append(_str_field(5, span.name))
    out.append(_tag(6, 0) + _varint(span.kind.value + 1))  # API enum + 1 = proto enum
    out.append(_tag(7, 1) + struct.pack("<Q", span.start_time or 0))
    out.append(_tag(8, 1) + struct.pack("<Q", span.end_time or 0))
    out.append(_attributes(9, span.attributes))
    status = span.status
    if status.status_code.value:
        message = _str_field(2, status.description) if status.description else b""
        out.append(_bytes_field(15, message + _tag(3, 0) + _varint(status.status_code.value)))
    flags = 0x100 | (0x200 if parent is not None and parent.is_remote else 0)
    out.append(_tag(16, 5) + struct.pack("<I", flags | int(context.trace_flags)))
    return b"".join(out)


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
        resource = _bytes_field(1, _attributes(1, first.resource.attributes))
        scope_info = first.instrumentation_scope
        scope = b""
        if scope_info is not None:
            scope = _str_field(1, scope_info.name)
            if scope_info.version:
                scope += _str_field(2, scope_info.version)
        scope_spans = _bytes_field(1, scope) + b"".join(
            _bytes_field(2, encode_span(span)) for span in members
        )
        out.append(_bytes_field(1, resource + _bytes_field(2, scope_spans)))
    return b"".join(out)


# -- transport ------------------------------------------------------------------------------------
def parse_headers(text: str) -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_HEADERS``: ``key=value`` pairs, comma-separated, URL-encoded."""
    headers: dict[str, str] = {}
    for item in text.split(","):
        if "=" in item:
            key, value = item.split("=", 1)
            headers[unquote(key.strip())] = unquote(value.strip())
    return headers


class LeanOtlpExporter(SpanExporter):
    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        compression: str | None = None,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {endpoint!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path or "/v1/traces"
        self._timeout = timeout
        self._gzip = compression == "gzip"
        self._headers = {"Content-Type": "application/x-protobuf", **(headers or {})}
        if self._gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._connection: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.failures = 0

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._connection = kind(self._host, self._port, timeout=self._timeout)
        return self._connection

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._closed:
            return SpanExportResult.FAILURE
        body = encode_request(spans)
        if self._gzip:
            body = gzip.compress(body, compresslevel=1)
        with self._lock:
            for attempt in (0, 1):  # a kept-alive connection the collector closed: once more
                connection = self._connect()
                try:
                    connection.request("POST", self._path, body, self._headers)
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException) as exc:
                    connection.close()
                    self._connection = None
                    if attempt:
                        return self._failed(f"{type(exc).__name__}: {exc}", len(spans))
                    continue
                if 200 <= response.status < 300:
                    if self.failures:
                        log.info("span export recovered after %d failed batches", self.failures)
                        self.failures = 0
                    return SpanExportResult.SUCCESS
                return self._failed(f"collector answered {response.status}", len(spans))
        return SpanExportResult.FAILURE  # pragma: no cover - the loop always returns

    def _failed(self, reason: str, count: int) -> SpanExportResult:
        self.failures += 1
        # The first failure is news; later ones are the same outage (debug, not a log flood).
        level = logging.WARNING if self.failures == 1 else logging.DEBUG
        log.log(level, "dropped %d spans: %s", count, reason)
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._closed = True
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
