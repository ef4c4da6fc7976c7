"""What a Python service of the demo does for tracing: the OpenTelemetry SDK with its OTLP/HTTP
exporter as the global tracer provider (the mesh client records its CLIENT spans through the
API, so it picks this up with no code of its own), and a SERVER span per inbound request.

Configured by OpenTelemetry's standard variables: ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_ENDPOINT``), ``OTEL_SERVICE_NAME``, ``OTEL_BSP_*``. No endpoint: no tracing.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable

import requests
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


def traces_endpoint() -> str | None:
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if endpoint:
        return endpoint
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return base.rstrip("/") + "/v1/traces" if base else None


def tracing_ctx(service: str) -> Callable[[web.Application], AsyncIterator[None]]:
    """An ``app.cleanup_ctx``: the SDK as the global provider while the app runs, its last
    spans exported on the way out."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        endpoint = traces_endpoint()
        if endpoint is None:
            yield
            return
        name = os.environ.get("OTEL_SERVICE_NAME", "").strip() or service
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        # The demo's collector is local: an HTTP(S)_PROXY of the environment is not for it.
        session = requests.Session()
        session.trust_env = False
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, session=session, timeout=3))
        )
        trace.set_tracer_provider(provider)
        try:
            yield
        finally:
            provider.shutdown()

    return context


def server_spans(tracer_name: str) -> Middleware:
    """A SERVER span around each request, the child of the caller's ``traceparent``, made the
    current span while the handler runs (so the mesh client's spans are its children)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/health":
            return await handler(request)  # the agent's checks: not worth a trace each
        parent = _PROPAGATOR.extract(carrier=request.headers, context=Context())
        route = request.match_info.route.resource
        pattern = route.canonical if route is not None else request.path
        span = trace.get_tracer(tracer_name).start_span(
            f"{request.method} {pattern}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": request.method,
                "url.path": request.path,
                "http.route": pattern,
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            otel_context.detach(token)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(StatusCode.ERROR)
            span.end()

    return middleware
