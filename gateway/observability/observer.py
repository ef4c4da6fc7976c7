"""The engine's one observability hook: called when a request head is complete and when its
response is done (or the client went away). Metrics, the access log and the SERVER span all
hang off these two calls, so the engine knows nothing about any of them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from gateway.observability.access_log import AccessLog
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import Tracing

if TYPE_CHECKING:
    from gateway.exchange import Destination, Exchange

# nginx's convention for "the client closed the connection before the response was sent".
CLIENT_CLOSED = 499


class RequestObserver:
    __slots__ = ("_access_log", "metrics", "tracing")

    def __init__(
        self, metrics: Metrics | None, access_log: AccessLog | None, tracing: Tracing | None
    ) -> None:
        self.metrics = metrics
        # None when off, so each step on the request path is one check.
        self.tracing = tracing if tracing is not None and tracing.enabled else None
        self._access_log = access_log if access_log is not None and access_log.enabled else None

    def started(self, exchange: Exchange) -> None:
        exchange.started = time.perf_counter()
        exchange.started_wall = time.time()
        if self.metrics is not None:
            self.metrics.in_flight += 1
        if self.tracing is not None:
            self.tracing.server_start(exchange, time.time_ns())

    def finished(self, exchange: Exchange, status: int, bytes_in: int, bytes_out: int) -> None:
        duration = time.perf_counter() - exchange.started
        route = exchange.route
        route_id = route.id if route is not None else None
        request = exchange.request
        target = exchange.target
        # The lane actually used: the picked instance's; None when nothing was discovered.
        lane = target.lane if target is not None else None
        if self.metrics is not None:
            self.metrics.in_flight -= 1
            self.metrics.request(
                route_id or "",
                request.method,
                status,
                duration,
                lane or "",
                target.service if target is not None else None,
                target.instance_id if target is not None else None,
            )
            if exchange.lane_fallback and target is not None:
                self.metrics.lane_fallback(target.service or "", exchange.lane or "")
        context = exchange.trace
        if self._access_log is not None:
            upstream = None
            if target is not None:
                upstream = target.instance_id or f"{target.host}:{target.port}"
            trace_id = span_id = None
            if context is not None and context.server is not None:
                trace_id = f"{context.server.trace_id:032x}"
                span_id = f"{context.server.span_id:016x}"
            elif context is not None:
                trace_id = f"{context.trace_id:032x}"
            self._access_log.record(
                exchange.started_wall,
                exchange.request_id,
                route_id,
                request.method,
                exchange.original_path or request.path,
                status,
                duration,
                upstream,
                bytes_in,
                bytes_out,
                exchange.client_address,
                trace_id,
                span_id,
                lane,
                exchange.lane_fallback,
                exchange.principal,
            )
        if self.tracing is not None:
            self.tracing.server_end(exchange, status, time.time_ns())

    def attempt(self, target: Destination, status: int | None) -> None:
        if self.metrics is not None:
            self.metrics.attempt(
                target.service, target.instance_id, target.host, target.port, status
            )
