"""An upstream HTTP server instrumented with OpenTelemetry the way a real service would be: it
continues the caller's trace from W3C ``traceparent``/``baggage`` headers, records a SERVER span
per request and exports it over OTLP/HTTP to a test receiver. With it a tracing test sees the
far side of a hop as a real backend would, including what the gateway propagated.

Nothing here touches OpenTelemetry's global state (no global tracer provider, no global
propagator, no context attached): the gateway under test runs in the same process and its own
tracing setup must be what the tests observe, not something this helper installed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry import baggage, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tests.support.otlp import loopback_exporter
from tests.support.upstream import serve

Mode = Literal["ok", "503"]

# Where the middleware leaves the request's context (the extracted parent plus the server span)
# for the handler, instead of attaching it to the task's current context.
CONTEXT_KEY = web.RequestKey("otel_context", Context)


@dataclass
class TracedUpstream:
    name: str
    receiver_traces_url: str
    port: int = 0
    mode: Mode = "ok"
    # Answer 503 for the next N requests only, then as ``mode`` says (forces exactly N retries).
    fail_next: int = 0
    received: int = 0
    _runner: web.AppRunner | None = None
    _provider: TracerProvider | None = None
    _propagator: CompositePropagator = field(
        default_factory=lambda: CompositePropagator(
            [TraceContextTextMapPropagator(), W3CBaggagePropagator()]
        )
    )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @web.middleware
    async def _trace(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Continue the caller's trace with a SERVER span around the handler, setting the HTTP
        semantic-convention attributes and, as server instrumentation does, ERROR for 5xx."""
        assert self._provider is not None
        parent = self._propagator.extract(carrier=request.headers, context=Context())
        tracer = self._provider.get_tracer(__name__)
        span = tracer.start_span(
            f"{request.method} {request.path}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "url.path": request.path},
        )
        request[CONTEXT_KEY] = trace.set_span_in_context(span, parent)
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # aiohttp's raised responses still have a status
            self._finish(span, exc.status)
            raise
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR, type(exc).__name__)
            span.end()
            raise
        self._finish(span, response.status)
        return response

    @staticmethod
    def _finish(span: trace.Span, status: int) -> None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(StatusCode.ERROR)
        span.end()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.received += 1
        await request.read()
        mode = self.mode
        if self.fail_next > 0:
            self.fail_next -= 1
            mode = "503"
        if mode == "503":
            return web.Response(status=503, text="busy", headers={"X-Upstream": self.name})
        context = request[CONTEXT_KEY]
        return web.json_response(
            {
                "upstream": self.name,
                "traceparent": request.headers.get("traceparent"),
                "baggage": dict(baggage.get_all(context)),
            },
            headers={"X-Upstream": self.name},
        )

    async def start(self) -> TracedUpstream:
        """Listen on 127.0.0.1 with a tracer provider of its own.

        BatchSpanProcessor with a 50 ms delay rather than SimpleSpanProcessor: the simple one
        exports synchronously when the span ends, i.e. in this server's event loop, and the
        receiver usually runs in that same loop — a blocking POST to it from the loop could never
        be answered, stalling the loop until the exporter's timeout. The batch processor
        exports from its own thread, and 50 ms keeps the delay negligible for a test."""
        provider = TracerProvider(
            resource=Resource.create({"service.name": self.name}), shutdown_on_exit=False
        )
        provider.add_span_processor(
            BatchSpanProcessor(
                loopback_exporter(self.receiver_traces_url), schedule_delay_millis=50
            )
        )
        self._provider = provider
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._trace])
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.port = await serve(
            app, self.port, reuse_address=True, shutdown_timeout=0.1
        )
        return self

    async def flush(self) -> None:
        """Export the spans ended so far now, not at the next 50 ms tick. In a thread, so the
        event loop (and a receiver running in it) keeps serving the export."""
        if self._provider is not None:
            await asyncio.to_thread(self._provider.force_flush)

    async def stop(self) -> None:
        """Close the listener, then shut the provider down, which exports what is still queued.
        Stop this before the receiver, or those last spans are lost (after a few seconds of
        retries, bounded by the exporter's timeout)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._provider is not None:
            # In a thread for the same reason as flush(): the final export needs the loop.
            await asyncio.to_thread(self._provider.shutdown)
            self._provider = None
