"""Prometheus metrics: plain counters on the request path, aggregated into prometheus-client at
flush (every second) and at scrape.

A labelled prometheus-client ``inc()`` takes a lock and a few microseconds; the request path
here only bumps a number in a dict keyed by a tuple. ``flush`` hands the deltas to the
prometheus-client objects, which with ``GATEWAY_WORKERS`` > 1 live in its multiprocess mode
(one mmap file per worker, summed at scrape), so totals are right across workers.

Gauges that describe state (breakers, ejected instances, instances per service, discovery
age) are computed at scrape from the scraping worker's view.

Beside ours, SCG's own series, on by default as in SCG (``metrics_enabled``, SCG's
``spring.cloud.gateway.metrics.enabled``): the ``spring_cloud_gateway_requests_seconds``
timer (``_count``, ``_sum``, ``_max``) with SCG's labels and values, and
``spring_cloud_gateway_routes_count``. Both come from the same per-request row as ours.
"""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from gateway.observability.buckets import BUCKETS
from gateway.observability.live import LiveCounters

_STATUS_CLASS = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")

StateSource = Callable[[], Iterable[GaugeMetricFamily]]
# route id, method, status, lane, service, instance id
_RequestKey = tuple[str, str, int, str, str | None, str | None]

SCG_REQUESTS = "spring_cloud_gateway_requests_seconds"
SCG_ROUTES = "spring_cloud_gateway_routes_count"
# SCG's tags (GatewayHttpTagsProvider, GatewayRouteTagsProvider), in the order its Prometheus
# registry writes them (by name).
SCG_LABELS = ("httpMethod", "httpStatusCode", "outcome", "routeId", "routeUri", "status")
# Micrometer's defaults for a timer's max: distributionStatisticExpiry 2 min, bufferLength 3.
MAX_EXPIRY = 120.0
MAX_BUFFERS = 3
# Spring's ``HttpStatus.resolve`` (Spring Framework 7.0, under SCG 5.0.4): the ``status`` label.
# A code it does not know is ``CUSTOM`` with the number as its status.
_SPRING_STATUS = {
    100: "CONTINUE", 101: "SWITCHING_PROTOCOLS", 102: "PROCESSING", 103: "EARLY_HINTS", 200: "OK",
    201: "CREATED", 202: "ACCEPTED", 203: "NON_AUTHORITATIVE_INFORMATION", 204: "NO_CONTENT",
    205: "RESET_CONTENT", 206: "PARTIAL_CONTENT", 207: "MULTI_STATUS", 208: "ALREADY_REPORTED",
    226: "IM_USED", 300: "MULTIPLE_CHOICES", 301: "MOVED_PERMANENTLY", 302: "FOUND",
    303: "SEE_OTHER", 304: "NOT_MODIFIED", 307: "TEMPORARY_REDIRECT", 308: "PERMANENT_REDIRECT",
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 402: "PAYMENT_REQUIRED", 403: "FORBIDDEN",
    404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE",
    407: "PROXY_AUTHENTICATION_REQUIRED", 408: "REQUEST_TIMEOUT", 409: "CONFLICT", 410: "GONE",
    411: "LENGTH_REQUIRED", 412: "PRECONDITION_FAILED", 413: "CONTENT_TOO_LARGE",
    414: "URI_TOO_LONG", 415: "UNSUPPORTED_MEDIA_TYPE", 416: "REQUESTED_RANGE_NOT_SATISFIABLE",
    417: "EXPECTATION_FAILED", 418: "I_AM_A_TEAPOT", 421: "MISDIRECTED_REQUEST",
    422: "UNPROCESSABLE_CONTENT", 423: "LOCKED", 424: "FAILED_DEPENDENCY", 425: "TOO_EARLY",
    426: "UPGRADE_REQUIRED", 428: "PRECONDITION_REQUIRED", 429: "TOO_MANY_REQUESTS",
    431: "REQUEST_HEADER_FIELDS_TOO_LARGE", 451: "UNAVAILABLE_FOR_LEGAL_REASONS",
    500: "INTERNAL_SERVER_ERROR", 501: "NOT_IMPLEMENTED", 502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE", 504: "GATEWAY_TIMEOUT", 505: "HTTP_VERSION_NOT_SUPPORTED",
    506: "VARIANT_ALSO_NEGOTIATES", 507: "INSUFFICIENT_STORAGE", 508: "LOOP_DETECTED",
    509: "BANDWIDTH_LIMIT_EXCEEDED", 510: "NOT_EXTENDED", 511: "NETWORK_AUTHENTICATION_REQUIRED",
}  # fmt: skip
_SERIES = ("", "INFORMATIONAL", "SUCCESSFUL", "REDIRECTION", "CLIENT_ERROR", "SERVER_ERROR")


def status_class(status: int) -> str:
    return _STATUS_CLASS[status // 100] if 100 <= status < 600 else "other"


def scg_status(status: int) -> tuple[str, str]:
    """SCG's ``(outcome, status)`` labels for a response status: ``("SUCCESSFUL", "OK")``,
    ``("CUSTOM", "299")`` for a code Spring has no name for."""
    name = _SPRING_STATUS.get(status)
    if name is None:
        return "CUSTOM", str(status)
    return _SERIES[status // 100], name


class WindowMax:
    """Micrometer's ``TimeWindowMax``, which SCG's ``_max`` is: the largest value recorded in
    the last ``expiry`` seconds, give or take one rotation. A ring of ``buffers`` maxima; every
    ``expiry / buffers`` seconds the current one is cleared and the next becomes current, so
    the one read has been collecting for between ``expiry`` minus one rotation and ``expiry``.
    ``now`` is a monotonic clock reading."""

    __slots__ = ("_current", "_last_rotate", "_ring", "_rotate_every")

    def __init__(self, now: float, expiry: float = MAX_EXPIRY, buffers: int = MAX_BUFFERS) -> None:
        self._ring = [0.0] * buffers
        self._current = 0
        self._last_rotate = now
        self._rotate_every = expiry / buffers

    def record(self, value: float, now: float) -> None:
        self._rotate(now)
        ring = self._ring
        for index, held in enumerate(ring):
            if value > held:
                ring[index] = value

    def poll(self, now: float) -> float:
        self._rotate(now)
        return self._ring[self._current]

    def _rotate(self, now: float) -> None:
        elapsed = now - self._last_rotate
        every = self._rotate_every
        if elapsed < every:
            return
        ring = self._ring
        if elapsed >= every * len(ring):
            ring[:] = [0.0] * len(ring)
            self._current = 0
            self._last_rotate = now
            return
        for _ in range(len(ring)):
            ring[self._current] = 0.0
            self._current = (self._current + 1) % len(ring)
            elapsed -= every
            self._last_rotate += every
            if elapsed < every:
                break


class _ScgSeries:
    """One label set of SCG's request timer, in this process."""

    __slots__ = ("count", "max", "total")

    def __init__(self, now: float) -> None:
        self.count = 0.0
        self.total = 0.0
        self.max = WindowMax(now)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _StateCollector(Collector):
    def __init__(self, source: StateSource) -> None:
        self._source = source

    def collect(self) -> Iterable[Any]:
        yield from self._source()


class _ScgCollector(Collector):
    """SCG's series as its Prometheus registry writes them: the timer as a summary without
    ``_created``, its max as a gauge of its own, the routes count."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Any]:
        yield from self._metrics.scg_families()


class Metrics:
    def __init__(
        self,
        state: StateSource | None = None,
        *,
        metrics_enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
        live: LiveCounters | None = None,
    ) -> None:
        """``metrics_enabled``: SCG's series (``spring.cloud.gateway.metrics.enabled``); ours
        are not affected. Read at every flush, so it may be changed on a reload. ``clock``:
        monotonic seconds, for the timer's max window. ``live``: also fed at every flush,
        per route and per instance (the dashboard's numbers)."""
        self.metrics_enabled = metrics_enabled
        self._live = live
        self._clock = clock
        self._multiprocess = multiprocess_dir() is not None
        # Metric objects register in this registry (per process); in multiprocess mode their
        # values live in the shared directory and the scrape reads that instead.
        self._registry = CollectorRegistry(auto_describe=True)
        registry = self._registry
        # ``lane``: the gray-release lane the request was sent to ("stable" when it asked for
        # none or fell back; "" when it went to no lb:// service).
        self._requests = Counter(
            "meshgate_requests",
            "Requests answered, by route, method, status class and lane.",
            ("route", "method", "status", "lane"),
            registry=registry,
        )
        self._duration = Histogram(
            "meshgate_request_duration_seconds",
            "Time from the request head to the last byte of the response.",
            ("route", "method", "status", "lane"),
            buckets=BUCKETS,
            registry=registry,
        )
        self._attempts = Counter(
            "meshgate_upstream_attempts",
            "Upstream attempts, by service, instance and outcome (status class or error).",
            ("service", "instance", "outcome"),
            registry=registry,
        )
        self._retries = Counter(
            "meshgate_retries", "Retries sent, by service.", ("service",), registry=registry
        )
        self._exhausted = Counter(
            "meshgate_retry_budget_exhausted",
            "Retries refused because the service's retry budget was spent.",
            ("service",),
            registry=registry,
        )
        self._lane_fallbacks = Counter(
            "meshgate_lane_fallbacks",
            "Requests whose lane had no instance and went to the stable lane instead.",
            ("service", "lane"),
            registry=registry,
        )
        self._in_flight_gauge = Gauge(
            "meshgate_requests_in_flight",
            "Requests being handled (sampled each second).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        # Local aggregates, (route id, method, status, lane, service, instance) -> [count,
        # sum, max, bucket counts...]: one row serves our series (by status class), SCG's (by
        # status, its lanes added together) and the live numbers (per route and instance) at
        # flush.
        self._req: dict[_RequestKey, list[float]] = {}
        self._att: dict[tuple[str | None, str | None, str, int, int], int] = {}
        self._ret: dict[str, int] = {}
        self._exh: dict[str, int] = {}
        self._fallbacks: dict[tuple[str, str], int] = {}
        self.in_flight = 0
        self._state = state
        # SCG's timer: label values -> its totals and max here. With several workers the
        # totals also go to a Summary in the shared directory (summed at scrape), and each
        # worker's current window max to a gauge the scrape takes the largest of ("livemax").
        self._scg: dict[tuple[str, ...], _ScgSeries] = {}
        self._route_uris: dict[str, str] = {}
        self._live_uris: Mapping[str, str] = {}
        if self._multiprocess:
            self._scg_summary = Summary(
                SCG_REQUESTS, "Requests routed, SCG's timer.", SCG_LABELS, registry=registry
            )
            self._scg_max = Gauge(
                f"{SCG_REQUESTS}_max",
                "Longest request in the last two minutes, SCG's timer.",
                SCG_LABELS,
                registry=registry,
                multiprocess_mode="livemax",
            )
        # Mirror filters' copies and comparisons (``gateway.mirror``'s ``MirrorEvents``).
        self.mirrors = MirrorCounters(registry)
        # RequestRateLimiter's decisions and backend failures, GATEWAY_MAX_INFLIGHT's refusals.
        self.rate_limits = RateLimitCounters(registry)
        self._scrape_registry = CollectorRegistry(auto_describe=False)
        if self._multiprocess:
            MultiProcessCollector(self._scrape_registry)  # type: ignore[no-untyped-call]
        if state is not None:
            self._scrape_registry.register(_StateCollector(state))
        self._scrape_registry.register(_ScgCollector(self))

    def set_routes(self, uris: Mapping[str, str]) -> None:
        """The live table's routes, id -> URI as written (SCG's ``routeUri`` label and its
        routes count). Counts taken so far are flushed first, under the URIs they were taken
        with; the previous table's URIs are kept one table longer, for requests in flight
        across the swap (a request is recorded by route id, looked up at flush)."""
        self.flush()
        self._route_uris = {**self._live_uris, **uris}
        self._live_uris = dict(uris)

    # -- request path ------------------------------------------------------------------------
    def request(
        self,
        route: str,
        method: str,
        status: int,
        duration: float,
        lane: str = "",
        service: str | None = None,
        instance: str | None = None,
    ) -> None:
        """``route``: the matched route's id, "" when none matched; ``lane``: the lane of the
        instance the request went to, "" when it went to no discovered instance; ``service``
        and ``instance``: that instance (None for a fixed address or none)."""
        key = (route, method, status, lane, service, instance)
        row = self._req.get(key)
        if row is None:
            row = self._req[key] = [0.0] * (3 + len(BUCKETS) + 1)
        row[0] += 1
        row[1] += duration
        if duration > row[2]:
            row[2] = duration
        row[3 + bisect.bisect_left(BUCKETS, duration)] += 1

    def attempt(
        self, service: str | None, instance: str | None, host: str, port: int, status: int | None
    ) -> None:
        """Labels are formatted at flush, not here: the key is the raw parts."""
        key = (service, instance, host, port, 0 if status is None else status // 100)
        self._att[key] = self._att.get(key, 0) + 1

    def retry(self, service: str) -> None:
        self._ret[service] = self._ret.get(service, 0) + 1

    def budget_exhausted(self, service: str) -> None:
        self._exh[service] = self._exh.get(service, 0) + 1

    def lane_fallback(self, service: str, lane: str) -> None:
        """A request asked for ``lane`` of ``service``, which had no instance: it went to
        stable."""
        key = (service, lane)
        self._fallbacks[key] = self._fallbacks.get(key, 0) + 1

    # -- aggregation -------------------------------------------------------------------------
    def flush(self) -> None:
        """Move the local counts into the prometheus-client objects (one call per series)."""
        self.mirrors.flush()
        self.rate_limits.flush()
        requests, self._req = self._req, {}
        live = self._live
        for (route, method, status, lane, service, instance), row in requests.items():
            key = (route, method, status_class(status), lane)
            self._requests.labels(*key).inc(row[0])
            _add_observations(self._duration.labels(*key), row[1], row[3:])
            if live is not None:
                live.requests(route, service, instance, status, row[0], row[3:])
        if self.metrics_enabled:
            self._flush_scg(requests)
        attempts, self._att = self._att, {}
        for (service, instance, host, port, code), count in attempts.items():
            address = f"{host}:{port}"
            outcome = f"{code}xx" if code else "error"
            self._attempts.labels(service or address, instance or address, outcome).inc(count)
            if live is not None and service is not None and instance is not None:
                live.attempts(service, instance, code, count)
        retries, self._ret = self._ret, {}
        for service, count in retries.items():
            self._retries.labels(service).inc(count)
        exhausted, self._exh = self._exh, {}
        for service, count in exhausted.items():
            self._exhausted.labels(service).inc(count)
        fallbacks, self._fallbacks = self._fallbacks, {}
        for (service, lane), count in fallbacks.items():
            self._lane_fallbacks.labels(service, lane).inc(count)
        self._in_flight_gauge.set(self.in_flight)

    def _flush_scg(self, requests: Mapping[_RequestKey, list[float]]) -> None:
        now = self._clock()
        uris = self._route_uris
        for (route, method, status, *_), row in requests.items():
            if not route:
                continue  # no route matched: SCG's metrics filter, a global filter, never ran
            outcome, name = scg_status(status)
            labels = (method, str(status), outcome, route, uris.get(route, ""), name)
            series = self._scg.get(labels)
            if series is None:
                series = self._scg[labels] = _ScgSeries(now)
            series.count += row[0]
            series.total += row[1]
            series.max.record(row[2], now)
            if self._multiprocess:
                child = self._scg_summary.labels(*labels)
                child._count.inc(row[0])
                child._sum.inc(row[1])
        if self._multiprocess:
            # Every series, not only this second's: a max that aged out must read 0.
            for known, each in self._scg.items():
                self._scg_max.labels(*known).set(each.max.poll(now))

    def scg_families(self) -> Iterable[Any]:
        """SCG's series at scrape (the timer only without the shared directory, which holds
        it otherwise)."""
        if not self.metrics_enabled:
            return
        if not self._multiprocess:
            now = self._clock()
            summary = SummaryMetricFamily(
                SCG_REQUESTS, "Requests routed, SCG's timer.", labels=SCG_LABELS
            )
            longest = GaugeMetricFamily(
                f"{SCG_REQUESTS}_max",
                "Longest request in the last two minutes, SCG's timer.",
                labels=SCG_LABELS,
            )
            for labels, series in self._scg.items():
                summary.add_metric(labels, count_value=int(series.count), sum_value=series.total)
                longest.add_metric(labels, series.max.poll(now))
            yield summary
            yield longest
        yield GaugeMetricFamily(
            SCG_ROUTES, "Routes in the live table.", value=float(len(self._live_uris))
        )

    def render(self) -> bytes:
        self.flush()
        if self._multiprocess:
            return generate_latest(self._scrape_registry)
        return generate_latest(self._registry) + generate_latest(self._scrape_registry)


def _add_observations(histogram: Histogram, total: float, counts: list[float]) -> None:
    """Add pre-bucketed observations to a histogram child in one step per bucket, instead of
    one ``observe()`` per request. prometheus-client keeps per-bucket (non-cumulative) values
    in ``_buckets`` (one per upper bound, +Inf last) and the total in ``_sum``; ``observe``
    itself does exactly this for a single value."""
    buckets = histogram._buckets
    for index, count in enumerate(counts):
        if count:
            buckets[index].inc(count)
    histogram._sum.inc(total)


class MirrorCounters:
    """The Mirror filters' counters (``gateway.mirror.stats.MirrorEvents``): plain dict bumps
    per copy, moved into prometheus-client at flush, as the request counters are."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            "meshgate_mirror_requests",
            "Mirrored copies, by route and how they ended (sent, dropped_inflight, "
            "skipped_body, failed, timeout).",
            ("route", "outcome"),
            registry=registry,
        )
        self._comparisons = Counter(
            "meshgate_mirror_comparisons",
            "Shadow comparisons, by route and result (equal, differing, not_comparable).",
            ("route", "result"),
            registry=registry,
        )
        self._req: dict[tuple[str, str], int] = {}
        self._cmp: dict[tuple[str, str], int] = {}

    def mirror_request(self, route: str, outcome: str) -> None:
        key = (route, outcome)
        self._req[key] = self._req.get(key, 0) + 1

    def mirror_comparison(self, route: str, result: str) -> None:
        key = (route, result)
        self._cmp[key] = self._cmp.get(key, 0) + 1

    def flush(self) -> None:
        requests, self._req = self._req, {}
        for labels, count in requests.items():
            self._requests.labels(*labels).inc(count)
        comparisons, self._cmp = self._cmp, {}
        for labels, count in comparisons.items():
            self._comparisons.labels(*labels).inc(count)


class RateLimitCounters:
    """RequestRateLimiter's counters (``resilience.ratelimit.base.RateLimitEvents``) and the
    in-flight cap's: plain dict bumps per request, moved into prometheus-client at flush."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            "meshgate_rate_limit_requests",
            "RequestRateLimiter decisions, by route and outcome (allowed, denied, empty_key, "
            "backend_error).",
            ("route", "outcome"),
            registry=registry,
        )
        self._errors = Counter(
            "meshgate_rate_limit_backend_errors",
            "Calls to the rate limiter's Redis that failed, by reason (timeout, connection, "
            "error).",
            ("reason",),
            registry=registry,
        )
        self._shed = Counter(
            "meshgate_max_inflight_rejected",
            "Requests answered 503 because GATEWAY_MAX_INFLIGHT requests were in flight.",
            registry=registry,
        )
        self._req: dict[tuple[str, str], int] = {}
        self._err: dict[str, int] = {}
        self._rejected = 0

    def decision(self, scope: str, outcome: str) -> None:
        key = (scope, outcome)
        self._req[key] = self._req.get(key, 0) + 1

    def backend_error(self, reason: str) -> None:
        self._err[reason] = self._err.get(reason, 0) + 1

    def inflight_rejected(self) -> None:
        self._rejected += 1

    def flush(self) -> None:
        requests, self._req = self._req, {}
        for labels, count in requests.items():
            self._requests.labels(*labels).inc(count)
        errors, self._err = self._err, {}
        for reason, count in errors.items():
            self._errors.labels(reason).inc(count)
        rejected, self._rejected = self._rejected, 0
        if rejected:
            self._shed.inc(rejected)
