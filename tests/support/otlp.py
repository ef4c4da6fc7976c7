"""A real OTLP/HTTP trace receiver on 127.0.0.1 for the tracing tests: the SDK's own exporter
posts protobuf ``ExportTraceServiceRequest`` batches to it exactly as it would to a collector, and
the tests read back flat :class:`ReceivedSpan` records instead of nested protobuf messages.

A mock exporter would only prove that the code under test called an API; going through the wire
format also proves the resource (``service.name``), the ids and the attributes survive
serialization the way a real backend would see them."""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import requests
from aiohttp import web

# protobuf itself ships no type information (types-protobuf is not installed); the generated
# opentelemetry-proto modules do ship .pyi stubs, so only this import needs the exemption.
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.support.upstream import serve

_KINDS: dict[int, str] = {
    Span.SPAN_KIND_UNSPECIFIED: "UNSPECIFIED",
    Span.SPAN_KIND_INTERNAL: "INTERNAL",
    Span.SPAN_KIND_SERVER: "SERVER",
    Span.SPAN_KIND_CLIENT: "CLIENT",
    Span.SPAN_KIND_PRODUCER: "PRODUCER",
    Span.SPAN_KIND_CONSUMER: "CONSUMER",
}

_STATUSES: dict[int, str] = {
    Status.STATUS_CODE_UNSET: "UNSET",
    Status.STATUS_CODE_OK: "OK",
    Status.STATUS_CODE_ERROR: "ERROR",
}

PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the collector saw it: ids in the hex form W3C ``traceparent`` uses, so a test
    can compare them with headers directly; enum values by their short OTLP names."""

    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str | None  # None for a root span (OTLP sends empty bytes)
    name: str
    kind: str  # SERVER, CLIENT, INTERNAL, PRODUCER, CONSUMER (UNSPECIFIED if unset)
    service: str  # the resource's service.name ("" if the resource had none)
    attributes: dict[str, object]
    status_code: str  # UNSET, OK, ERROR
    start_ns: int
    end_ns: int
    trace_state: str = ""
    flags: int = 0  # W3C trace flags and OTLP's has-is-remote/is-remote bits
    status_message: str = ""
    scope: str = ""

    def summary(self) -> str:
        parent = self.parent_span_id or "-"
        return (
            f"{self.service}: {self.kind} {self.name!r} trace={self.trace_id} "
            f"span={self.span_id} parent={parent} status={self.status_code}"
        )


def decode_value(value: AnyValue) -> object:
    """An OTLP ``AnyValue`` as the plain Python value the instrumentation set; arrays become
    lists (the SDK turns attribute tuples into arrays, so a test compares with a list)."""
    match value.WhichOneof("value"):
        case "string_value":
            return value.string_value
        case "bool_value":
            return value.bool_value
        case "int_value":
            return value.int_value
        case "double_value":
            return value.double_value
        case "array_value":
            return [decode_value(item) for item in value.array_value.values]
        case "kvlist_value":
            return decode_attributes(value.kvlist_value.values)
        case "bytes_value":
            return value.bytes_value
        case _:
            return None


def decode_attributes(pairs: Iterable[KeyValue]) -> dict[str, object]:
    return {pair.key: decode_value(pair.value) for pair in pairs}


def decode_request(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    """Flatten resource → scope → span nesting, keeping arrival order within the batch."""
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = decode_attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=bytes(span.trace_id).hex(),
                        span_id=bytes(span.span_id).hex(),
                        parent_span_id=bytes(span.parent_span_id).hex() or None,
                        name=span.name,
                        kind=_KINDS.get(span.kind, str(span.kind)),
                        service=service,
                        attributes=decode_attributes(span.attributes),
                        status_code=_STATUSES.get(span.status.code, str(span.status.code)),
                        start_ns=int(span.start_time_unix_nano),
                        end_ns=int(span.end_time_unix_nano),
                        trace_state=span.trace_state,
                        flags=int(span.flags),
                        status_message=span.status.message,
                        scope=scope_spans.scope.name,
                    )
                )
    return spans


def loopback_exporter(
    traces_url: str, *, compression: Compression | None = None, timeout: float = 3.0
) -> OTLPSpanExporter:
    """An OTLP/HTTP span exporter for a receiver on 127.0.0.1, safe in any environment.

    The session ignores ``HTTP(S)_PROXY`` from the environment: a loopback receiver reached
    through a proxy fails in ways that look like tracing bugs. ``timeout`` bounds the exporter's
    whole retry loop (not one attempt), so a provider shut down after its receiver has stopped
    gives up within seconds instead of the SDK's default ten."""
    session = requests.Session()
    session.trust_env = False
    return OTLPSpanExporter(
        endpoint=traces_url, session=session, compression=compression, timeout=timeout
    )


class OtlpReceiver:
    """``POST /v1/traces`` with protobuf bodies (plain, gzip or deflate), as the Python OTLP/HTTP
    exporter sends them. JSON-encoded OTLP is refused with 415: it encodes ids as hex rather
    than protobuf-JSON's base64, and no exporter in these tests sends it.

    ``fail_with`` turns it into an unhealthy collector: every export is answered with that
    status (and nothing is recorded). ``retry_after`` goes with such answers because the SDK
    retries 429/502/503/504 with 1 s, 2 s, 4 s… backoff; ``"0"`` lets it exhaust its retries at
    once so a test (and the provider's shutdown) does not sit through the backoff. Set it to
    None to see the SDK's real backoff."""

    def __init__(self) -> None:
        self.port = 0
        self.spans: list[ReceivedSpan] = []
        self.requests = 0  # export requests received, refused ones included
        self.problems: list[str] = []  # why requests were refused (other than fail_with)
        self.headers: list[dict[str, str]] = []  # each export request's headers, lower-cased
        self.fail_with: int | None = None
        self.retry_after: str | None = "0"
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_url(self) -> str:
        return f"{self.url}/v1/traces"

    def clear(self) -> None:
        """Forget received spans, request count and problems (the failure mode stays as set)."""
        self.spans.clear()
        self.requests = 0
        self.problems.clear()
        self.headers.clear()

    async def _traces(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        # Read the body even when failing, so the exporter's request completes cleanly.
        body = await request.read()
        if self.fail_with is not None:
            headers = {} if self.retry_after is None else {"Retry-After": self.retry_after}
            return web.Response(status=self.fail_with, text="unhealthy", headers=headers)
        if request.content_type != PROTOBUF:
            return self._refuse(415, f"unsupported Content-Type {request.content_type!r}")
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding not in ("identity", "none", ""):
                return self._refuse(415, f"unsupported Content-Encoding {encoding!r}")
        except (OSError, EOFError, zlib.error) as error:
            return self._refuse(400, f"bad {encoding} body: {error}")
        export = ExportTraceServiceRequest()
        try:
            export.ParseFromString(body)
        except DecodeError as error:
            return self._refuse(400, f"not an ExportTraceServiceRequest: {error}")
        self.spans.extend(decode_request(export))
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(), content_type=PROTOBUF
        )

    def _refuse(self, status: int, problem: str) -> web.Response:
        self.problems.append(problem)
        return web.Response(status=status, text=problem)

    async def start(self) -> OtlpReceiver:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self._traces)
        # Decompression is done in the handler, where it is explicit and tested, not by
        # aiohttp's parser (whose default would decompress gzip before we saw it).
        self._runner, self.port = await serve(
            app, self.port, reuse_address=True, shutdown_timeout=0.1, auto_decompress=False
        )
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def summary(self) -> str:
        lines = [f"{self.requests} export request(s), {len(self.spans)} span(s)"]
        lines += [f"  {span.summary()}" for span in self.spans]
        lines += [f"  refused: {problem}" for problem in self.problems]
        if self.fail_with is not None:
            lines.append(f"  (failing every export with {self.fail_with})")
        return "\n".join(lines)

    async def wait_for(
        self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 10
    ) -> list[ReceivedSpan]:
        """Poll until ``predicate(spans)`` holds and return the spans. Exports arrive from the
        SDK's worker threads on their own schedule, so tests wait for an outcome rather than
        sleep; a timeout fails with everything that did arrive, which is usually the clue."""
        deadline = time.monotonic() + timeout
        while True:
            spans = list(self.spans)
            if predicate(spans):
                return spans
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"OTLP receiver: condition not met within {timeout} s; received "
                    + self.summary()
                )
            await asyncio.sleep(0.02)
