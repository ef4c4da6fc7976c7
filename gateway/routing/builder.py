"""Route definitions to built routes: every predicate and filter through its factory.

Each route gets its own ``BuildContext`` (its ``route_id`` set) copied from one base context, so
all routes of a table share one ``WeightGroups``. Default filters are built per route, as SCG
does, because a filter may keep per-route state. ``Route.handler`` stays unset: compiling the
chain is the composition root's job.

Errors are collected across the whole config and raised together as ``ConfigErrors``, each with
its place in the document (``routes.yml: routes[2] (orders) filters[0] (RewritePath): ...``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from gateway.config.args import Args
from gateway.config.errors import RANK_DOCUMENT, DocumentLayout, ErrorCollector
from gateway.config.schema import FilterDefinition, GatewayConfig, PredicateDefinition
from gateway.config.shortcut import unknown_name
from gateway.errors import ConfigError
from gateway.extension import (
    BuildContext,
    FilterFactory,
    GatewayFilter,
    Predicate,
    PredicateFactory,
)
from gateway.filters.catalog import builtin_global_filters
from gateway.routing.metadata import RoutePolicy, merge_policy, route_policy, with_cors
from gateway.routing.route import Route, RouteUri

ContextFactory = Callable[[], BuildContext]

_T = TypeVar("_T")
_Built_co = TypeVar("_Built_co", covariant=True)


def scg_filter_order(default_filters: Sequence[_T], route_filters: Sequence[_T]) -> list[_T]:
    """SCG's merge: each list's filters get their 1-based index as order — unless a filter
    has an order of its own (``GatewayFilter.order``, SCG's Ordered) — then the two lists,
    default filters first, are stable-sorted by it — so default[0], route[0], default[1],
    route[1], … and the longer list's tail last."""
    ordered = [(_order_of(f, i + 1), f) for i, f in enumerate(default_filters)]
    ordered += [(_order_of(f, i + 1), f) for i, f in enumerate(route_filters)]
    ordered.sort(key=lambda item: item[0])
    return [f for _, f in ordered]


def _order_of(item: object, place: int) -> int:
    own = getattr(item, "order", None)
    return own if isinstance(own, int) else place


class _Factory(Protocol[_Built_co]):
    @property
    def build(self) -> Callable[[Args, BuildContext], _Built_co]: ...


def _kebab(name: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "-", name).lower()


def _build(
    kind: str,
    name: str,
    args: Mapping[str, Any],
    factories: Mapping[str, _Factory[_Built_co]],
    ctx: BuildContext,
) -> _Built_co:
    factory = factories.get(name)
    if factory is None:
        raise unknown_name(kind, name, factories)
    settings = ctx.filter_settings
    switched_off = settings.disabled_filters if kind == "filter" else settings.disabled_predicates
    if name in switched_off:
        # SCG then has no such factory bean: the route fails to load. Say why, by the property.
        raise ConfigError(
            f"{kind} {name} is switched off by spring.cloud.gateway.server.webflux."
            f"{kind}.{_kebab(name)}.enabled: false"
        )
    checked = Args(args)
    built = factory.build(checked, ctx)
    checked.finish()
    return built


def build_predicate(
    definition: PredicateDefinition,
    factories: Mapping[str, PredicateFactory],
    ctx: BuildContext,
) -> Predicate:
    return _build("predicate", definition.name, definition.args, factories, ctx)


def build_filter(
    definition: FilterDefinition,
    factories: Mapping[str, FilterFactory],
    ctx: BuildContext,
) -> GatewayFilter:
    return _build("filter", definition.name, definition.args, factories, ctx)


def build_routes(
    config: GatewayConfig,
    predicates: Mapping[str, PredicateFactory],
    filters: Mapping[str, FilterFactory],
    ctx_factory: ContextFactory | None = None,
    *,
    layout: DocumentLayout | None = None,
) -> list[Route]:
    """Build every route of ``config`` in file order. Raises ``ConfigErrors`` listing every
    predicate, filter and URI that failed. ``ctx_factory`` is called once; ``layout`` (from
    the loader) makes error locations match a nested or partly broken document."""
    errors = ErrorCollector(config.source)
    routes = collect_routes(config, predicates, filters, ctx_factory, layout=layout, errors=errors)
    errors.raise_if_any()
    return routes


def collect_routes(
    config: GatewayConfig,
    predicates: Mapping[str, PredicateFactory],
    filters: Mapping[str, FilterFactory],
    ctx_factory: ContextFactory | None = None,
    *,
    layout: DocumentLayout | None = None,
    errors: ErrorCollector,
) -> list[Route]:
    """``build_routes`` that adds its errors to ``errors`` instead of raising, and returns the
    routes that built cleanly."""
    layout = layout or DocumentLayout.of(config)
    base = ctx_factory() if ctx_factory is not None else BuildContext()
    base = replace(
        base,
        known_services=base.known_services | frozenset(config.services),
        filter_settings=config.spring.filters,  # the document's spring filter.* defaults
    )
    # Built once for the table: every route shares them (the global response cache).
    global_filters = builtin_global_filters(base)
    reported_defaults: set[int] = set()

    def defaults_for(ctx: BuildContext) -> list[GatewayFilter] | None:
        built: list[GatewayFilter] = []
        ok = True
        for position, definition in enumerate(config.default_filters):
            try:
                built.append(build_filter(definition, filters, ctx))
            except ConfigError as exc:
                ok = False
                # The same default filter fails the same way for every route: report it once.
                if position not in reported_defaults:
                    reported_defaults.add(position)
                    errors.add(
                        exc,
                        layout.default_filter_label(position, definition.name),
                        key=layout.default_filter_key(position),
                    )
        return built if ok else None

    if not config.routes:
        defaults_for(base)  # nothing uses them yet, but a mistake is still a mistake

    routes: list[Route] = []
    seen: set[str] = set()
    for position, definition in enumerate(config.routes):
        label = layout.route_label(position, definition.id)
        key = layout.route_key(position)
        ctx = replace(base, route_id=definition.id, metadata=definition.metadata)
        ok = True
        if definition.id in seen:
            errors.add(ConfigError(f"duplicate id {definition.id!r}"), label, key=key)
            ok = False
        seen.add(definition.id)

        uri: RouteUri | None = None
        try:
            uri = RouteUri.parse(definition.uri)
        except ConfigError as exc:
            errors.add(exc, label, "uri", key=key)
        service = uri.service if uri is not None else None
        if service is not None:
            ctx = replace(ctx, service=service)

        built_predicates: list[Predicate] = []
        for index, predicate_definition in enumerate(definition.predicates):
            try:
                built_predicates.append(build_predicate(predicate_definition, predicates, ctx))
            except ConfigError as exc:
                ok = False
                item = f"predicates[{index}] ({predicate_definition.name})"
                errors.add(exc, label, item, key=key)

        defaults = defaults_for(ctx)
        own: list[GatewayFilter] = []
        for index, filter_definition in enumerate(definition.filters):
            try:
                own.append(build_filter(filter_definition, filters, ctx))
            except ConfigError as exc:
                ok = False
                errors.add(exc, label, f"filters[{index}] ({filter_definition.name})", key=key)

        policy: RoutePolicy | None = None
        try:
            policy = route_policy(definition.metadata)
        except ConfigError as exc:
            ok = False
            errors.add(exc, label, key=key)
        defaults_of_service = _service_policy(config, service) if service else None
        if policy is not None and defaults_of_service:
            try:
                policy = route_policy(merge_policy(defaults_of_service, definition.metadata))
            except ConfigError:
                ok = False  # the service's own mistake, reported where ``services:`` is read

        if not ok or uri is None or defaults is None or policy is None:
            continue
        routes.append(
            Route(
                id=definition.id,
                uri=uri,
                order=definition.order,
                predicates=tuple(built_predicates),
                filters=tuple(scg_filter_order(defaults, own)),
                metadata=definition.metadata,
                definition=definition,
                policy=policy,
                pattern=next((p for p in (q.route_pattern() for q in built_predicates) if p), None),
                global_filters=global_filters,
            )
        )
    try:
        # The build's CORS table (every route's metadata.cors, then globalcors) on each route.
        return with_cors(routes, config.spring.cors)
    except ConfigError as exc:  # a globalcors path pattern that does not parse
        errors.add(exc, key=(RANK_DOCUMENT,))
        return routes


def _service_policy(config: GatewayConfig, service: str) -> Mapping[str, Any] | None:
    """The ``services:`` policy for ``service``; ids compare case-insensitively, as the
    registries compare them (the reader refuses two ids that differ only in case)."""
    wanted = service.casefold()
    for name, policy in config.service_policies.items():
        if name.casefold() == wanted:
            return policy
    return None
