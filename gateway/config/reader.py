"""A route document's data to a ``GatewayConfig``, as far as it goes, with every mistake.

Routes may sit where our own format puts them (top-level ``routes:``) or where a Spring
``application.yml`` does (``spring.cloud.gateway.routes`` or
``spring.cloud.gateway.server.webflux.routes``, nested or as dotted keys). ``default-filters``
sit beside ``routes``; ``services:`` (``gateway.config.services``) is always top-level; every
other Spring setting is ``gateway.config.spring``'s.

The reader checks structure and parses every predicate and filter entry against the factories'
shortcut specs (names and shortcut arity); building them is ``gateway.routing.builder``'s job.
It does not stop at the first mistake: every error is collected, in document order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.config.errors import (
    RANK_DEFAULT_FILTERS,
    RANK_DOCUMENT,
    RANK_ROUTES,
    DocumentLayout,
    ErrorCollector,
)
from gateway.config.schema import (
    FilterDefinition,
    GatewayConfig,
    PredicateDefinition,
    RouteDefinition,
)
from gateway.config.services import PolicyCheck, read_services
from gateway.config.shortcut import (
    ShortcutSpec,
    describe_value,
    entry_name,
    parse_filter,
    parse_predicate,
    unknown_key,
)
from gateway.config.spring import SpringReader
from gateway.config.values import as_int, as_list
from gateway.errors import ConfigError

ROUTE_KEYS = ("id", "uri", "predicates", "filters", "order", "metadata")
_DEFAULT_FILTER_KEYS = ("default-filters", "defaultFilters", "default_filters")
_TOP_LEVEL_KEYS = ("routes", *_DEFAULT_FILTER_KEYS, "services")
# Where a gateway section may live, most specific first.
_SECTIONS: tuple[tuple[str, ...], ...] = (
    (),
    ("spring", "cloud", "gateway", "server", "webflux"),
    ("spring", "cloud", "gateway"),
)
_D = TypeVar("_D", PredicateDefinition, FilterDefinition)


def _accept(value: object) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ValueChecks:
    """Checks of values whose meaning belongs to a layer above config: what a route ``uri``
    may be (its schemes) and what a service policy's values may be are routing's to say.

    The reader calls each where it meets the value, so its error sits in document order among
    the structural ones, and a route whose ``uri`` fails is left out like any broken route.
    Each raises ``ConfigError`` without a location. The defaults accept anything: the values
    are then checked only when routes are built.
    """

    uri: Callable[[str], object] = _accept
    service_policy: PolicyCheck = _accept


STRUCTURE_ONLY = ValueChecks()


@dataclass(frozen=True, slots=True)
class UnbuiltRoute:
    """A route left out of the config for a structural mistake (no id, a bad uri, ...), with
    the entries of it that did parse: building them anyway finds their argument errors now
    rather than after the structural one is fixed."""

    label: str
    key: tuple[int, ...]
    route_id: str
    predicates: tuple[tuple[str, PredicateDefinition], ...]
    filters: tuple[tuple[str, FilterDefinition], ...]


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A document read as far as it could be: ``config`` holds only the parts without errors
    (a route with any error is left out whole, into ``unbuilt``), ``errors`` everything that
    was wrong."""

    config: GatewayConfig
    layout: DocumentLayout
    errors: ErrorCollector
    unbuilt: tuple[UnbuiltRoute, ...] = ()


def _find(node: object, path: tuple[str, ...], walked: str = "") -> list[tuple[str, Any]]:
    """Every ``(dotted path as written, value)`` at ``path`` below ``node``, where one mapping
    key may spell several parts joined by dots (``spring.cloud.gateway: {routes: ...}``)."""
    if not path:
        return [(walked, node)]
    if not isinstance(node, Mapping):
        return []
    found: list[tuple[str, Any]] = []
    for size in range(1, len(path) + 1):
        key = ".".join(path[:size])
        if key in node:
            below = f"{walked}.{key}" if walked else key
            found.extend(_find(node[key], path[size:], below))
    return found


class DocumentReader:
    """Reads one document once: ``read`` fills ``errors`` as it goes."""

    def __init__(
        self,
        source: str,
        predicates: Mapping[str, ShortcutSpec],
        filters: Mapping[str, ShortcutSpec],
        checks: ValueChecks = STRUCTURE_ONLY,
    ) -> None:
        self.source = source
        self.predicates = predicates
        self.filters = filters
        self.checks = checks
        self.errors = ErrorCollector(source)

    def read(self, data: object) -> LoadResult:
        empty = LoadResult(
            GatewayConfig(source=self.source), DocumentLayout(self.source), self.errors
        )
        if data is None:
            return empty
        if not isinstance(data, Mapping):
            self.errors.fail(
                f"the document must be a mapping (with routes:), got {describe_value(data)}",
                key=(RANK_DOCUMENT,),
            )
            return empty
        self._check_top_level(data)
        routes_key, raw_routes = self._section(data, ("routes",), "routes")
        default_key, raw_defaults = self._section(data, _DEFAULT_FILTER_KEYS, "default-filters")
        default_filters, default_indexes = self._default_filters(default_key, raw_defaults)
        routes, route_indexes, unbuilt = self._routes(routes_key, raw_routes)
        services, policies = read_services(
            data.get("services"), self.errors, self.checks.service_policy
        )
        spring = SpringReader(self.errors, self.predicates, self.filters).read(data)
        config = GatewayConfig(
            routes=tuple(routes),
            default_filters=tuple(default_filters),
            services=services,
            source=self.source,
            service_policies=policies,
            spring=spring,
        )
        layout = DocumentLayout(
            source=self.source,
            routes_key=routes_key,
            default_filters_key=default_key,
            route_indexes=tuple(route_indexes),
            default_filter_indexes=tuple(default_indexes),
        )
        return LoadResult(config, layout, self.errors, tuple(unbuilt))

    def _check_top_level(self, data: Mapping[Any, Any]) -> None:
        keys = [str(key) for key in data]
        # A Spring application.yml carries server:, management:, logging: and more beside the
        # gateway's keys; only our own format can say what belongs at the top.
        spring_roots = ("spring", "server", "management")
        if any(key.split(".", 1)[0] in spring_roots for key in keys):
            return
        for key in keys:
            # ``x-`` keys are free for YAML anchors to live under, as in Compose files.
            if key not in _TOP_LEVEL_KEYS and not key.startswith("x-"):
                allowed = ("routes", "default-filters", "services", "spring")
                error = unknown_key(key, allowed, "top-level key")
                self.errors.add(error, key=(RANK_DOCUMENT,))

    def _section(
        self, data: Mapping[Any, Any], names: Sequence[str], default_key: str
    ) -> tuple[str, Any]:
        found = [
            hit for prefix in _SECTIONS for name in names for hit in _find(data, (*prefix, name))
        ]
        if not found:
            return default_key, None
        if len(found) > 1:
            places = ", ".join(path for path, _ in found)
            self.errors.fail(
                f"{default_key} defined in more than one place ({places}); keep one",
                key=(RANK_DOCUMENT,),
            )
        return found[0]

    # -- default filters -----------------------------------------------------------------------

    def _default_filters(
        self, key_name: str, raw: object
    ) -> tuple[list[FilterDefinition], list[int]]:
        definitions: list[FilterDefinition] = []
        indexes: list[int] = []
        for index, entry in enumerate(as_list(raw, self.errors, key_name, (RANK_DEFAULT_FILTERS,))):
            name = entry_name(entry)
            label = f"{key_name}[{index}] ({name})" if name else f"{key_name}[{index}]"
            try:
                definitions.append(parse_filter(entry, self.filters))
                indexes.append(index)
            except ConfigError as exc:
                self.errors.add(exc, label, key=(RANK_DEFAULT_FILTERS, index))
        return definitions, indexes

    # -- routes --------------------------------------------------------------------------------

    def _routes(
        self, key_name: str, raw: object
    ) -> tuple[list[RouteDefinition], list[int], list[UnbuiltRoute]]:
        routes: list[RouteDefinition] = []
        indexes: list[int] = []
        unbuilt: list[UnbuiltRoute] = []
        first_seen: dict[str, int] = {}
        for index, entry in enumerate(as_list(raw, self.errors, key_name, (RANK_ROUTES,))):
            before = len(self.errors)
            route = self._route(key_name, index, entry, first_seen)
            if isinstance(route, RouteDefinition) and len(self.errors) == before:
                routes.append(route)
                indexes.append(index)
            elif isinstance(route, UnbuiltRoute):
                unbuilt.append(route)
        return routes, indexes, unbuilt

    def _route(
        self, key_name: str, index: int, entry: object, first_seen: dict[str, int]
    ) -> RouteDefinition | UnbuiltRoute | None:
        key = (RANK_ROUTES, index)
        label = f"{key_name}[{index}]"
        if not isinstance(entry, Mapping):
            self.errors.fail(
                f"expected a route (a mapping with id and uri), got {describe_value(entry)}",
                label,
                key=key,
            )
            return None
        before = len(self.errors)

        route_id = self._route_id(entry.get("id"), label, key)
        if route_id is not None:
            label = f"{label} ({route_id})"
            if route_id in first_seen:
                self.errors.fail(
                    f"duplicate id {route_id!r} (also {key_name}[{first_seen[route_id]}])",
                    label,
                    key=key,
                )
            else:
                first_seen[route_id] = index

        for raw_key in entry:
            if raw_key not in ROUTE_KEYS:
                self.errors.add(unknown_key(str(raw_key), ROUTE_KEYS), label, key=key)

        uri = self._route_uri(entry.get("uri"), label, key)
        predicates = self._entries(
            entry.get("predicates"), "predicates", label, key, self.predicates, parse_predicate
        )
        filters = self._entries(
            entry.get("filters"), "filters", label, key, self.filters, parse_filter
        )
        order = self._route_order(entry.get("order"), label, key)
        metadata = self._route_metadata(entry.get("metadata"), label, key)
        if route_id is None or uri is None or len(self.errors) != before:
            return UnbuiltRoute(label, key, route_id or "", tuple(predicates), tuple(filters))
        return RouteDefinition(
            id=route_id,
            uri=uri,
            predicates=tuple(definition for _, definition in predicates),
            filters=tuple(definition for _, definition in filters),
            order=order,
            metadata=metadata,
        )

    def _route_id(self, value: object, label: str, key: tuple[int, ...]) -> str | None:
        if value is None:
            self.errors.fail("missing required key 'id'", label, key=key)
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.errors.fail(f"id must be a string, got {describe_value(value)}", label, key=key)
            return None
        route_id = str(value).strip()
        if not route_id:
            self.errors.fail("id must not be empty", label, key=key)
            return None
        return route_id

    def _route_uri(self, value: object, label: str, key: tuple[int, ...]) -> str | None:
        if value is None:
            self.errors.fail("missing required key 'uri'", label, key=key)
            return None
        if not isinstance(value, str):
            self.errors.fail(f"uri must be a string, got {describe_value(value)}", label, key=key)
            return None
        try:
            self.checks.uri(value)
        except ConfigError as exc:
            self.errors.add(exc, label, "uri", key=key)
            return None
        return value

    def _route_order(self, value: object, label: str, key: tuple[int, ...]) -> int:
        if value is None:
            return 0
        order = as_int(value)
        if order is None:
            self.errors.fail(
                f"order must be an integer, got {describe_value(value)}", label, key=key
            )
            return 0
        return order

    def _route_metadata(self, value: object, label: str, key: tuple[int, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.errors.fail(
                f"metadata must be a mapping, got {describe_value(value)}", label, key=key
            )
            return {}
        return {str(name): item for name, item in value.items()}

    def _entries(
        self,
        raw: object,
        field: str,
        label: str,
        key: tuple[int, ...],
        factories: Mapping[str, ShortcutSpec],
        parse: Callable[[object, Mapping[str, ShortcutSpec]], _D],
    ) -> list[tuple[str, _D]]:
        """The entries that parse, each with its label (``filters[0] (StripPrefix)``)."""
        definitions: list[tuple[str, _D]] = []
        for index, entry in enumerate(as_list(raw, self.errors, f"{label} {field}", key)):
            name = entry_name(entry)
            item = f"{field}[{index}] ({name})" if name else f"{field}[{index}]"
            try:
                definitions.append((item, parse(entry, factories)))
            except ConfigError as exc:
                self.errors.add(exc, label, item, key=key)
        return definitions
