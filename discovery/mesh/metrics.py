"""What a service's ``MeshClient`` counts, for Prometheus.

The series are the ones a Spring service's client and the gateway already export, so one
dashboard reads both:

- ``http_client_requests_seconds`` (``_count``, ``_sum``), Micrometer's client timer with its
  labels: ``client_name`` (the service, or ``host:port`` for a direct call), ``method``,
  ``status`` (the code; ``CLIENT_ERROR`` when no response came), ``outcome`` (``SUCCESS``,
  ``CLIENT_ERROR``, ``SERVER_ERROR``, ``REDIRECTION``, ``INFORMATIONAL``; ``UNKNOWN`` with no
  response), ``exception`` and ``error`` (the error's class name, or ``none``) and ``uri``
  (``none``: a client call has no URI template). One observation per call, retries included,
  up to the response head;
- ``meshgate_upstream_attempts_total`` (``service``, ``instance``, ``outcome``: ``2xx``...
  or ``error``), ``meshgate_retries_total`` and ``meshgate_retry_budget_exhausted_total``
  (``service``), as the gateway counts its own attempts;
- the gateway's scrape-time gauges (``discovery.state_gauges``): breaker state, ejected
  instances, instances per service, discovery snapshot age.

The call path only adds to plain dicts (no lock, no label lookup); the families are built
when Prometheus scrapes (``collector``), so counting costs the call about a microsecond.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from discovery.registry import ServiceRegistry
from discovery.state_gauges import state_gauges
from resilience.runtime import ServiceRuntimes

CLIENT_REQUESTS = "http_client_requests_seconds"
# Micrometer's client timer tags, in the order its Prometheus registry writes them (by name).
CLIENT_LABELS = ("client_name", "error", "exception", "method", "outcome", "status", "uri")
_OUTCOMES = ("UNKNOWN", "INFORMATIONAL", "SUCCESS", "REDIRECTION", "CLIENT_ERROR", "SERVER_ERROR")


class MeshMetrics:
    """A client's counters (``discovery.mesh.MeshClient(metrics=...)``); also the retry
    events of its call path (``resilience.runtime.CallEvents``)."""

    __slots__ = ("_attempts", "_calls", "_exhausted", "_retries")

    def __init__(self) -> None:
        # (client name, method, status or 0, error class or "") -> [count, seconds]
        self._calls: dict[tuple[str, str, int, str], list[Any]] = {}
        # (service, instance, status class or 0) -> count
        self._attempts: dict[tuple[str, str, int], int] = {}
        self._retries: dict[str, int] = {}
        self._exhausted: dict[str, int] = {}

    # -- the call path ----------------------------------------------------------------------
    def call(self, name: str, method: str, status: int, error: str, seconds: float) -> None:
        """One call over: ``status`` 0 and ``error`` the class name when no response came."""
        key = (name, method, status, error)
        row = self._calls.get(key)
        if row is None:
            self._calls[key] = [1, seconds]
        else:
            row[0] += 1
            row[1] += seconds

    def attempt(self, service: str, instance: str, status: int) -> None:
        """One attempt to an instance (``status`` 0: it failed without a response)."""
        key = (service, instance, status // 100)
        self._attempts[key] = self._attempts.get(key, 0) + 1

    def retry(self, service: str) -> None:
        self._retries[service] = self._retries.get(service, 0) + 1

    def budget_exhausted(self, service: str) -> None:
        self._exhausted[service] = self._exhausted.get(service, 0) + 1

    # -- the scrape -------------------------------------------------------------------------
    def families(self) -> Iterable[Any]:
        calls = SummaryMetricFamily(
            CLIENT_REQUESTS,
            "Calls made by the mesh client (Micrometer's client timer).",
            labels=CLIENT_LABELS,
        )
        for (name, method, status, error), (count, seconds) in self._calls.items():
            outcome, code = "UNKNOWN", "CLIENT_ERROR"
            if status:
                code = str(status)
                if 100 <= status < 600:
                    outcome = _OUTCOMES[status // 100]
            failure = error or "none"
            labels = [name, failure, failure, method, outcome, code, "none"]
            calls.add_metric(labels, count_value=count, sum_value=seconds)
        yield calls
        attempts = CounterMetricFamily(
            "meshgate_upstream_attempts",
            "Attempts to instances, by service, instance and outcome (status class or error).",
            labels=("service", "instance", "outcome"),
        )
        for (service, instance, status_class), count in self._attempts.items():
            kind = f"{status_class}xx" if status_class else "error"
            attempts.add_metric([service, instance, kind], count)
        yield attempts
        for metric, documentation, values in (
            ("meshgate_retries", "Retries sent, by service.", self._retries),
            (
                "meshgate_retry_budget_exhausted",
                "Retries refused because the service's retry budget was spent.",
                self._exhausted,
            ),
        ):
            family = CounterMetricFamily(metric, documentation, labels=("service",))
            for service, count in values.items():
                family.add_metric([service], count)
            yield family


class _Families(Collector):
    def __init__(self, source: Callable[[], Iterable[Any]]) -> None:
        self._source = source

    def collect(self) -> Iterable[Any]:
        yield from self._source()


def collector(
    metrics: MeshMetrics, runtimes: ServiceRuntimes, registry: ServiceRegistry
) -> Collector:
    """The client's series and its state gauges, for ``CollectorRegistry.register``."""

    def families() -> Iterable[Any]:
        yield from metrics.families()
        yield from state_gauges(runtimes, registry)

    return _Families(families)


def exposition(source: Collector) -> bytes:
    """The text a ``/metrics`` endpoint answers (Prometheus' text format)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(source)
    return generate_latest(registry)
