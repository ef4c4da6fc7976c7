"""OpenTelemetry traces: a SERVER span per request and a CLIENT span per upstream attempt, so
retries, hedges and fallbacks show up as separate children of one request.

Configured by OpenTelemetry's standard environment (``OTEL_SDK_DISABLED``,
``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``, ``OTEL_TRACES_SAMPLER[_ARG]``,
``OTEL_BSP_*``, ...) and ``GATEWAY_TRACING_EXPORTER``.
Tracing is on when an OTLP endpoint is configured. A sampled span is encoded when it ends and
goes, in batches through a pipe, to an exporter process that posts it
(:mod:`gateway.observability.span_pipe`); ``GATEWAY_TRACING_EXPORTER=thread`` keeps the SDK's
batch processor on a thread instead. Either way a collector outage costs dropped spans, never a
slower or failed request.

The sampling decision is made here, before anything is allocated: an unsampled request (90 %
at 10 % sampling) costs a header lookup and, when it starts the trace, a ``traceparent`` for the
upstream. A sampled request records its spans as plain fields and encodes each one when it
ends (in thread mode: hands the SDK's batch processor one ``ReadableSpan``); OTel's global state
is left alone.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from discovery.traceparent import parse_traceparent as _parse_traceparent
from discovery.traceparent import remote_parent
from gateway import __version__
from gateway.observability.otlp_exporter import (
    LeanOtlpExporter,
    encode_resource,
    encode_scope,
    encode_span_fields,
    scope_span,
)
from gateway.observability.otlp_sender import OtlpHttpSender, parse_headers
from gateway.observability.span_pipe import ExporterConfig, SpanPipe

if TYPE_CHECKING:
    from gateway.exchange import Destination, Exchange

log = logging.getLogger("meshgate.tracing")

_SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
_UNSET = Status(StatusCode.UNSET)


@dataclass(frozen=True, slots=True)
class TracingSettings:
    enabled: bool = False
    service_name: str = "meshgate"
    endpoint: str | None = None  # the traces URL, e.g. http://collector:4318/v1/traces
    sampler: str = "parentbased_always_on"
    ratio: float = 1.0
    headers: Mapping[str, str] = field(default_factory=dict)
    compression: str | None = None
    # GATEWAY_TRACING_EXPORTER: "process" (a pipe to an exporter process) or "thread" (the
    # SDK's batch span processor in this process).
    exporter: str = "process"
    timeout: float = 10.0  # OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT, per post
    schedule_delay: float = 5.0  # OTEL_BSP_SCHEDULE_DELAY
    queue_size: int = 2048  # OTEL_BSP_MAX_QUEUE_SIZE
    batch_size: int | None = None  # OTEL_BSP_MAX_EXPORT_BATCH_SIZE (None: the mode's default)

    @classmethod
    def from_env(cls, env: Mapping[str, str], default_service: str) -> TracingSettings:
        """Errors name the variable; an unknown sampler is an error, not a silent default."""
        disabled = env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
        exporter = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip() or None
        if endpoint is None:
            base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
            if base:
                endpoint = base.rstrip("/") + "/v1/traces"
        sampler = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
        if sampler not in _SAMPLERS:
            known = ", ".join(_SAMPLERS)
            raise ValueError(f"OTEL_TRACES_SAMPLER: unsupported {sampler!r} (use one of {known})")
        ratio = 1.0
        if sampler.endswith("traceidratio"):
            raw = env.get("OTEL_TRACES_SAMPLER_ARG", "1.0").strip() or "1.0"
            try:
                ratio = float(raw)
            except ValueError as exc:
                raise ValueError(f"OTEL_TRACES_SAMPLER_ARG: not a number: {raw!r}") from exc
            if not 0.0 <= ratio <= 1.0:
                raise ValueError(f"OTEL_TRACES_SAMPLER_ARG: must be in [0, 1], got {raw!r}")
        service = env.get("OTEL_SERVICE_NAME", "").strip() or default_service
        enabled = not disabled and exporter != "none" and endpoint is not None
        headers = parse_headers(
            env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
            or env.get("OTEL_EXPORTER_OTLP_HEADERS", "")
        )
        compression = (
            env.get("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION")
            or env.get("OTEL_EXPORTER_OTLP_COMPRESSION", "")
        ).strip().lower() or None
        if compression not in (None, "none", "gzip"):
            raise ValueError(
                f"OTEL_EXPORTER_OTLP_COMPRESSION: use gzip or none, got {compression!r}"
            )
        if compression == "none":
            compression = None
        mode = env.get("GATEWAY_TRACING_EXPORTER", "process").strip().lower() or "process"
        if mode not in ("process", "thread"):
            raise ValueError(f"GATEWAY_TRACING_EXPORTER: use process or thread, got {mode!r}")
        timeout_ms = (
            _positive_int(env, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
            or _positive_int(env, "OTEL_EXPORTER_OTLP_TIMEOUT")
            or 10_000
        )
        queue_size = _positive_int(env, "OTEL_BSP_MAX_QUEUE_SIZE") or 2048
        batch_size = _positive_int(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
        if batch_size is not None and batch_size > queue_size:
            raise ValueError(
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: must not exceed OTEL_BSP_MAX_QUEUE_SIZE "
                f"({batch_size} > {queue_size})"
            )
        delay_ms = _positive_int(env, "OTEL_BSP_SCHEDULE_DELAY") or 5000
        return cls(
            enabled,
            service,
            endpoint,
            sampler,
            ratio,
            headers,
            compression,
            mode,
            timeout_ms / 1000,
            delay_ms / 1000,
            queue_size,
            batch_size,
        )


def _positive_int(env: Mapping[str, str], name: str) -> int | None:
    """A positive integer variable (milliseconds or a count, as OpenTelemetry defines each);
    None when it is unset or empty."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}: not a whole number: {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name}: must be positive, got {raw!r}")
    return value


class OpenSpan:
    """A span being recorded: plain fields until it ends, then one SDK ``ReadableSpan`` for
    the batch processor. The SDK's own ``Span`` (locks, bounded attributes, a lifecycle per
    attribute) cost more than the whole rest of a request."""

    __slots__ = ("attributes", "kind", "name", "parent", "span_id", "start", "trace_id")

    def __init__(
        self,
        trace_id: int,
        span_id: int,
        parent: SpanContext | None,
        name: str,
        kind: SpanKind,
        start: int,
        attributes: dict[str, Any],
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent = parent
        self.name = name
        self.kind = kind
        self.start = start
        self.attributes = attributes

    def context(self, state: TraceState | None = None) -> SpanContext:
        return SpanContext(
            self.trace_id,
            self.span_id,
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
            trace_state=state,
        )


class TraceContext:
    """The exchange's trace state: the SERVER span (when sampled) and what to propagate."""

    __slots__ = ("server", "trace_id", "traceparent", "tracestate")

    def __init__(
        self,
        trace_id: int,
        server: OpenSpan | None,
        traceparent: bytes | None,
        tracestate: TraceState | None,
    ) -> None:
        self.trace_id = trace_id
        self.server = server
        # For an unsampled request: the traceparent to send upstream (None: pass the client's).
        self.traceparent = traceparent
        self.tracestate = tracestate


class Tracing:
    def __init__(
        self,
        settings: TracingSettings,
        rng: random.Random | None = None,
        *,
        log_level: str = "INFO",
        log_format: str = "text",
    ) -> None:
        """``log_level``/``log_format``: the exporter process logs as the gateway does."""
        self.settings = settings
        self.enabled = settings.enabled
        self._rng = rng or random.Random()
        self._processor: BatchSpanProcessor | None = None
        self.pipe: SpanPipe | None = None
        sampler = settings.sampler
        self._parent_based = sampler.startswith("parentbased_")
        root = sampler.removeprefix("parentbased_")
        self._root_ratio = {"always_on": 1.0, "always_off": 0.0}.get(root, settings.ratio)
        self._bound = round(self._root_ratio * (1 << 64))
        self._resource = Resource.create({"service.name": settings.service_name})
        self._scope = InstrumentationScope("meshgate", __version__)
        if not self.enabled:
            pass
        elif settings.exporter == "process":
            assert settings.endpoint is not None
            self.pipe = SpanPipe(
                ExporterConfig(
                    settings.endpoint,
                    settings.headers,
                    settings.timeout,
                    settings.compression,
                    log_level,
                    log_format,
                ),
                resource=encode_resource(self._resource.attributes),
                scope=encode_scope(self._scope.name, self._scope.version),
                batch_size=settings.batch_size or 512,
                queue_size=settings.queue_size,
                schedule_delay=settings.schedule_delay,
            )
        else:
            assert settings.endpoint is not None
            exporter = LeanOtlpExporter(
                OtlpHttpSender(
                    settings.endpoint,
                    headers=settings.headers,
                    timeout=settings.timeout,
                    compression=settings.compression,
                )
            )
            # The SDK's batch processor on its own thread. Its export thread encodes a batch
            # holding the GIL: smaller batches than the SDK's 512 keep that out of the
            # request tail.
            self._processor = BatchSpanProcessor(
                exporter,
                max_queue_size=settings.queue_size,
                schedule_delay_millis=settings.schedule_delay * 1000,
                max_export_batch_size=settings.batch_size or 64,
            )
        self._recording = self.pipe is not None or self._processor is not None

    def _sampled_root(self, trace_id: int) -> bool:
        # TraceIdRatioBased's rule: the low 64 bits of the trace id against the ratio.
        return (trace_id & 0xFFFFFFFFFFFFFFFF) < self._bound

    # -- SERVER span --------------------------------------------------------------------------
    def server_start(self, exchange: Exchange, start_ns: int) -> None:
        headers = exchange.request.headers
        incoming = headers.get("traceparent")
        parsed = _parse_traceparent(incoming) if incoming else None
        if parsed is not None:
            trace_id, parent_span, parent_sampled = parsed
            sampled = parent_sampled if self._parent_based else self._sampled_root(trace_id)
        else:
            trace_id = self._rng.getrandbits(128) or 1
            parent_span, parent_sampled = 0, False
            sampled = self._sampled_root(trace_id)
        if not sampled or not self._recording:
            # Not recorded here. A valid client traceparent goes on untouched (the upstream's
            # parent is the client's span); otherwise we start the trace, unsampled.
            traceparent = None
            if parsed is None:
                span_id = self._rng.getrandbits(64) or 1
                traceparent = b"00-%032x-%016x-00" % (trace_id, span_id)
            exchange.trace = TraceContext(trace_id, None, traceparent, None)
            return
        request = exchange.request
        parent: SpanContext | None = None
        state: TraceState | None = None
        tracestate = headers.get("tracestate")
        if parsed is not None:
            state = TraceState.from_header([tracestate]) if tracestate else None
            parent = remote_parent(trace_id, parent_span, parent_sampled, state)
        # Each attribute costs encoding time on the export thread: the semantic conventions'
        # required ones and ours, nothing decorative.
        span = OpenSpan(
            trace_id,
            self._rng.getrandbits(64) or 1,
            parent,
            request.method,
            SpanKind.SERVER,
            start_ns,
            {
                "http.request.method": request.method,
                "url.path": request.path,
                "server.address": exchange.original_host or exchange.server_host,
                "network.peer.address": exchange.client_host,
            },
        )
        exchange.trace = TraceContext(trace_id, span, None, state)

    def server_end(self, exchange: Exchange, status: int, end_ns: int) -> None:
        context = exchange.trace
        span = context.server if context is not None else None
        if span is None or context is None:
            return
        attributes = span.attributes
        route = exchange.route
        name = span.name
        if route is not None:
            attributes["gateway.route.id"] = route.id
            pattern = route.pattern
            if pattern:
                attributes["http.route"] = pattern
                name = f"{exchange.request.method} {pattern}"
        attributes["http.response.status_code"] = status
        error = Status(StatusCode.ERROR) if status >= 500 else _UNSET
        self._emit(span, name, error, end_ns, context.tracestate)

    # -- CLIENT spans ---------------------------------------------------------------------------
    def client_start(
        self, exchange: Exchange, target: Destination
    ) -> tuple[OpenSpan | None, bytes | None]:
        """The CLIENT span for one attempt (None when unsampled) and the traceparent to send
        (None: leave the client's as it is)."""
        context = exchange.trace
        if context is None:
            return None, None
        server = context.server
        if server is None:
            return None, context.traceparent
        attributes: dict[str, Any] = {
            "http.request.method": exchange.request.method,
            "server.address": target.host,
            "server.port": target.port,
        }
        if target.service is not None:
            attributes["gateway.service"] = target.service
        if target.instance_id is not None:
            attributes["gateway.instance"] = target.instance_id
        attempt = exchange.attempt
        if attempt > 1:
            attributes["http.request.resend_count"] = attempt - 1
            attributes["gateway.retry.attempt"] = attempt
        span = OpenSpan(
            server.trace_id,
            self._rng.getrandbits(64) or 1,
            server.context(context.tracestate),
            exchange.request.method,
            SpanKind.CLIENT,
            time.time_ns(),
            attributes,
        )
        header = b"00-%032x-%016x-01" % (span.trace_id, span.span_id)
        return span, header

    def client_end(
        self,
        exchange: Exchange,
        span: OpenSpan,
        status: int | None,
        error: BaseException | None,
    ) -> None:
        result = _UNSET
        if status is not None:
            span.attributes["http.response.status_code"] = status
            if status >= 500:
                result = Status(StatusCode.ERROR)
        elif error is not None:
            span.attributes["error.type"] = type(error).__name__
            result = Status(StatusCode.ERROR, str(error)[:200])
        context = exchange.trace
        state = context.tracestate if context is not None else None
        self._emit(span, span.name, result, time.time_ns(), state)

    def _emit(
        self, span: OpenSpan, name: str, status: Status, end_ns: int, state: TraceState | None
    ) -> None:
        pipe = self.pipe
        if pipe is not None:
            parent = span.parent
            pipe.add(
                scope_span(
                    encode_span_fields(
                        span.trace_id,
                        span.span_id,
                        state.to_header() if state else "",
                        parent.span_id if parent is not None else 0,
                        parent is not None and parent.is_remote,
                        name,
                        span.kind.value,
                        span.start,
                        end_ns,
                        span.attributes,
                        status.status_code.value,
                        status.description,
                        TraceFlags.SAMPLED,
                    )
                )
            )
            return
        processor = self._processor
        if processor is None:
            return
        processor.on_end(
            ReadableSpan(
                name,
                context=span.context(state),
                parent=span.parent,
                resource=self._resource,
                attributes=span.attributes,
                kind=span.kind,
                status=status,
                start_time=span.start,
                end_time=end_ns,
                instrumentation_scope=self._scope,
            )
        )

    @staticmethod
    def annotate(exchange: Exchange, key: str, value: str | int | bool) -> None:
        """An attribute on the request's SERVER span, when it is recorded (breaker state,
        rate-limit verdict)."""
        context = exchange.trace
        if context is not None and context.server is not None:
            context.server.attributes[key] = value

    def shutdown(self, timeout: float = 5.0) -> None:
        if self.pipe is not None:
            self.pipe.shutdown(timeout)
        if self._processor is not None:
            self._processor.force_flush(int(timeout * 1000))
            self._processor.shutdown()  # type: ignore[no-untyped-call]
