"""Gauges read from one process's call state at scrape time: breakers, ejected instances,
instances per service and the age of the discovery snapshot. The gateway's scrape and a
service's mesh client (``discovery.mesh.metrics``) export the same series from the same code."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily

from discovery.registry import ServiceRegistry
from resilience.runtime import ServiceRuntimes

_BREAKER_CODES = {"closed": 0, "open": 1, "half-open": 2}


def state_gauges(
    runtimes: ServiceRuntimes, registry: ServiceRegistry
) -> Iterable[GaugeMetricFamily]:
    breakers = GaugeMetricFamily(
        "meshgate_circuit_breaker_state",
        "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
        labels=["name"],
    )
    for name, view in runtimes.breakers.snapshot().items():
        breakers.add_metric([name], _BREAKER_CODES.get(str(view["state"]), 0))
    yield breakers
    ejected = GaugeMetricFamily(
        "meshgate_ejected_instances",
        "Instances ejected by outlier detection.",
        labels=["service"],
    )
    instances = GaugeMetricFamily(
        "meshgate_instances", "Routable instances per service.", labels=["service"]
    )
    for service in registry.services():
        # No watch is started here (``instances`` would start one for an unknown name).
        instances.add_metric([service], len(registry.known_instances(service)))
    for service, runtime in runtimes.known().items():
        ejected.add_metric([service], len(runtime.outlier.ejected()))
    yield ejected
    yield instances
    status = registry.status()
    if "snapshotAgeSeconds" in status:  # a source that can be out of date (Consul)
        age = status["snapshotAgeSeconds"]
        yield GaugeMetricFamily(
            "meshgate_discovery_snapshot_age_seconds",
            "Age of the oldest discovery snapshot (grows while Consul is unreachable).",
            value=float(age) if age is not None else 0.0,
        )
