"""Route, predicate and filter *definitions*: what the configuration says, before anything is
built from it. Frozen, so a loaded configuration can be shared and compared safely."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# A normalised argument value: shortcut and expanded forms both end up as one of these.
ArgValue = Any


@dataclass(frozen=True, slots=True)
class PredicateDefinition:
    name: str
    args: Mapping[str, ArgValue]


@dataclass(frozen=True, slots=True)
class FilterDefinition:
    name: str
    args: Mapping[str, ArgValue]


@dataclass(frozen=True, slots=True)
class RouteDefinition:
    id: str
    uri: str
    predicates: tuple[PredicateDefinition, ...] = ()
    filters: tuple[FilterDefinition, ...] = ()
    order: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InstanceDefinition:
    host: str
    port: int
    secure: bool = False
    weight: int = 1
    metadata: Mapping[str, str] = field(default_factory=dict)
    instance_id: str | None = None


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """One route document's definitions. Read from a document, its structure is checked and
    every predicate and filter entry parsed; building the routes checks the rest."""

    routes: tuple[RouteDefinition, ...] = ()
    default_filters: tuple[FilterDefinition, ...] = ()
    services: Mapping[str, tuple[InstanceDefinition, ...]] = field(default_factory=dict)
    source: str = "<embedded>"
    # Per-service defaults for routes to ``lb://<service>`` (same keys as route metadata:
    # load-balancer, hash-on, max-concurrent, max-concurrent-per-instance).
    service_policies: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
