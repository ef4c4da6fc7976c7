"""A route document checked end to end: read, parsed and every route built, with all mistakes
reported together. What ``meshgate validate`` runs, and what a reload runs before it swaps
anything in — bad config never half-applies."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from gateway.config.loader import (
    ConfigErrors,
    DocumentLayout,
    collect_document,
    read_file,
    read_text,
)
from gateway.config.schema import GatewayConfig
from gateway.config.shortcut import suggest
from gateway.errors import ConfigError
from gateway.filters.base import FilterFactory
from gateway.predicates.base import PredicateFactory
from gateway.routing.builder import (
    ContextFactory,
    build_filter,
    build_predicate,
    collect_routes,
)
from gateway.routing.context import BuildContext, WeightGroups
from gateway.routing.route import Route, RouteUri

__all__ = [
    "ConfigErrors",
    "service_warnings",
    "validate_document",
    "validate_file",
    "validate_text",
]


def validate_file(
    path: str | Path,
    predicates: Mapping[str, PredicateFactory],
    filters: Mapping[str, FilterFactory],
    ctx_factory: ContextFactory | None = None,
) -> tuple[GatewayConfig, list[Route]]:
    """Load and build ``path``. Raises ``ConfigError`` when the file cannot be read or is not
    YAML/JSON, and ``ConfigErrors`` listing every mistake in it otherwise."""
    return validate_text(read_file(path), str(path), predicates, filters, ctx_factory)


def validate_text(
    text: str,
    source: str,
    predicates: Mapping[str, PredicateFactory],
    filters: Mapping[str, FilterFactory],
    ctx_factory: ContextFactory | None = None,
) -> tuple[GatewayConfig, list[Route]]:
    return validate_document(read_text(text, source), source, predicates, filters, ctx_factory)


def validate_document(
    data: object,
    source: str,
    predicates: Mapping[str, PredicateFactory],
    filters: Mapping[str, FilterFactory],
    ctx_factory: ContextFactory | None = None,
) -> tuple[GatewayConfig, list[Route]]:
    """Check structure and build every route in one pass, so a missing ``uri`` in one route
    and a bad regexp in another are reported together. Routes with structural mistakes are
    left out of the config, but the entries of theirs that parsed are still built, for their
    errors."""
    loaded = collect_document(data, source, predicates, filters)
    errors = loaded.errors
    routes = collect_routes(
        loaded.config, predicates, filters, ctx_factory, layout=loaded.layout, errors=errors
    )
    if loaded.unbuilt:
        # Their own context: whatever these register (weight groups) must not reach a table.
        probe = ctx_factory() if ctx_factory is not None else BuildContext()
        probe = replace(probe, weights=WeightGroups(random.Random()))
        for route in loaded.unbuilt:
            ctx = replace(probe, route_id=route.route_id)
            for item, predicate in route.predicates:
                try:
                    build_predicate(predicate, predicates, ctx)
                except ConfigError as exc:
                    errors.add(exc, route.label, item, key=route.key)
            for item, gateway_filter in route.filters:
                try:
                    build_filter(gateway_filter, filters, ctx)
                except ConfigError as exc:
                    errors.add(exc, route.label, item, key=route.key)
    errors.raise_if_any()
    return loaded.config, routes


def service_warnings(config: GatewayConfig) -> list[str]:
    """Routes to ``lb://`` services that ``services:`` does not list, when it lists some.

    Not errors — discovery (Consul) may know the service — but when a document declares its
    services, a route to an undeclared one is most often a typo. Service names compare
    case-insensitively (host names do; ``lb://Orders`` reaches ``orders``).
    """
    if not config.services:
        return []
    declared = {name.lower(): name for name in config.services}
    layout = DocumentLayout.of(config)
    warnings: list[str] = []
    for position, route in enumerate(config.routes):
        service = RouteUri.parse(route.uri).service
        if service is None or service.lower() in declared:
            continue
        matches = suggest(service, declared.values(), limit=1)
        hint = f" (did you mean {matches[0]}?)" if matches else ""
        warnings.append(
            f"{config.source}: {layout.route_label(position, route.id)} uri: service "
            f"{service!r} is not in services:{hint}; discovery must provide it"
        )
    return warnings
