"""Prometheus metrics: plain counters on the request path, aggregated into prometheus-client at
flush (every second) and at scrape.

A labelled prometheus-client ``inc()`` takes a lock and a few microseconds; the request path
here only bumps a number in a dict keyed by a tuple. ``flush`` hands the deltas to the
prometheus-client objects, which with ``GATEWAY_WORKERS`` > 1 live in its multiprocess mode
(one mmap file per worker, summed at scrape), so totals are right across workers.

Gauges that describe state (breakers, ejected instances, instances per service, discovery
age) are computed at scrape from the scraping worker's view.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_STATUS_CLASS = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")

StateSource = Callable[[], Iterable[GaugeMetricFamily]]


def status_class(status: int) -> str:
    return _STATUS_CLASS[status // 100] if 100 <= status < 600 else "other"


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _StateCollector(Collector):
    def __init__(self, source: StateSource) -> None:
        self._source = source

    def collect(self) -> Iterable[Any]:
        yield from self._source()


class Metrics:
    def __init__(self, state: StateSource | None = None) -> None:
        self._multiprocess = multiprocess_dir() is not None
        # Metric objects register in this registry (per process); in multiprocess mode their
        # values live in the shared directory and the scrape reads that instead.
        self._registry = CollectorRegistry(auto_describe=True)
        registry = self._registry
        self._requests = Counter(
            "meshgate_requests",
            "Requests answered, by route, method and status class.",
            ("route", "method", "status"),
            registry=registry,
        )
        self._duration = Histogram(
            "meshgate_request_duration_seconds",
            "Time from the request head to the last byte of the response.",
            ("route", "method", "status"),
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
        self._in_flight_gauge = Gauge(
            "meshgate_requests_in_flight",
            "Requests being handled (sampled each second).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        # Local aggregates: key -> [count, sum, bucket counts...]
        self._req: dict[tuple[str, str, str], list[float]] = {}
        self._att: dict[tuple[str | None, str | None, str, int, int], int] = {}
        self._ret: dict[str, int] = {}
        self._exh: dict[str, int] = {}
        self.in_flight = 0
        self._state = state
        self._scrape_registry = CollectorRegistry(auto_describe=False)
        if self._multiprocess:
            MultiProcessCollector(self._scrape_registry)  # type: ignore[no-untyped-call]
        if state is not None:
            self._scrape_registry.register(_StateCollector(state))

    # -- request path ------------------------------------------------------------------------
    def request(self, route: str, method: str, status: int, duration: float) -> None:
        key = (route, method, _STATUS_CLASS[status // 100] if 100 <= status < 600 else "other")
        row = self._req.get(key)
        if row is None:
            row = self._req[key] = [0.0] * (2 + len(BUCKETS) + 1)
        row[0] += 1
        row[1] += duration
        row[2 + bisect.bisect_left(BUCKETS, duration)] += 1

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

    # -- aggregation -------------------------------------------------------------------------
    def flush(self) -> None:
        """Move the local counts into the prometheus-client objects (one call per series)."""
        requests, self._req = self._req, {}
        for key, row in requests.items():
            self._requests.labels(*key).inc(row[0])
            _add_observations(self._duration.labels(*key), row[1], row[2:])
        attempts, self._att = self._att, {}
        for (service, instance, host, port, code), count in attempts.items():
            address = f"{host}:{port}"
            outcome = f"{code}xx" if code else "error"
            self._attempts.labels(service or address, instance or address, outcome).inc(count)
        retries, self._ret = self._ret, {}
        for service, count in retries.items():
            self._retries.labels(service).inc(count)
        exhausted, self._exh = self._exh, {}
        for service, count in exhausted.items():
            self._exhausted.labels(service).inc(count)
        self._in_flight_gauge.set(self.in_flight)

    def render(self) -> bytes:
        self.flush()
        if self._multiprocess:
            return generate_latest(self._scrape_registry)
        body = generate_latest(self._registry)
        if self._state is not None:
            body += generate_latest(self._scrape_registry)
        return body


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
