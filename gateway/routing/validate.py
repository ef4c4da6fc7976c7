"""A route document checked end to end: read, parsed and every route built, with all mistakes
reported together. What ``meshgate validate`` runs, and what start-up and a reload run before
anything is swapped in — bad config never half-applies.

It lives in routing, not config, because it builds routes; and it hands the config reader the
checks only routing can make (``VALUE_CHECKS``), so a bad ``uri`` or service policy is reported
in document order beside the structural mistakes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from gateway.config.errors import DocumentLayout
from gateway.config.loader import collect_document
from gateway.config.reader import ValueChecks
from gateway.config.schema import GatewayConfig
from gateway.config.shortcut import suggest
from gateway.config.text import read_file, read_text
from gateway.errors import ConfigError
from gateway.extension import BuildContext, FilterFactory, PredicateFactory, WeightGroups
from gateway.routing.builder import (
    ContextFactory,
    build_filter,
    build_predicate,
    collect_routes,
)
from gateway.routing.metadata import route_policy
from gateway.routing.route import Route, RouteUri


def _check_service_policy(policy: Mapping[str, Any]) -> None:
    try:
        route_policy(policy)
    except ConfigError as exc:
        # The same checks as route metadata; here the keys sit on the service, so the message
        # names the key alone.
        raise ConfigError(str(exc).removeprefix("metadata ")) from exc


VALUE_CHECKS = ValueChecks(uri=RouteUri.parse, service_policy=_check_service_policy)


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
    loaded = collect_document(data, source, predicates, filters, checks=VALUE_CHECKS)
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
