"""A route document — a YAML or JSON file, or the same text from Consul KV — to a
``GatewayConfig``.

Routes may sit where our own format puts them (top-level ``routes:``) or where a Spring
``application.yml`` does (``spring.cloud.gateway.routes`` or
``spring.cloud.gateway.server.webflux.routes``, nested or as dotted keys). ``default-filters``
sit beside ``routes``; ``services:`` (static instances, our own addition) is always top-level.

The loader checks structure and parses every predicate and filter entry against the factories
(names and shortcut arity); building them is ``gateway.routing.builder``'s job. It does not stop
at the first mistake: every error is collected, in document order, so the user fixes them all in
one go.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from gateway.config.args import parse_bool
from gateway.config.schema import (
    FilterDefinition,
    GatewayConfig,
    InstanceDefinition,
    PredicateDefinition,
    RouteDefinition,
)
from gateway.config.shortcut import (
    ShortcutSpec,
    describe_value,
    entry_name,
    parse_filter,
    parse_predicate,
    suggest,
)
from gateway.errors import ConfigError
from gateway.filters.base import FilterFactory
from gateway.predicates.base import PredicateFactory
from gateway.routing.metadata import route_policy
from gateway.routing.route import RouteUri

try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

ROUTE_KEYS = ("id", "uri", "predicates", "filters", "order", "metadata")
INSTANCE_KEYS = ("host", "port", "secure", "weight", "metadata", "id")
_DEFAULT_FILTER_KEYS = ("default-filters", "defaultFilters", "default_filters")
_TOP_LEVEL_KEYS = ("routes", *_DEFAULT_FILTER_KEYS, "services")
SERVICE_POLICY_KEYS = (
    "load-balancer",
    "hash-on",
    "max-concurrent",
    "max-concurrent-per-instance",
)
# Where a gateway section may live, most specific first.
_SECTIONS: tuple[tuple[str, ...], ...] = (
    (),
    ("spring", "cloud", "gateway", "server", "webflux"),
    ("spring", "cloud", "gateway"),
)
_D = TypeVar("_D", PredicateDefinition, FilterDefinition)
_INTEGER = re.compile(r"^[+-]?\d+$")

# Sort ranks of the parts of a document, so errors come out in a predictable order.
_RANK_DOCUMENT, _RANK_DEFAULT_FILTERS, _RANK_ROUTES, _RANK_SERVICES = range(4)


class ConfigErrors(ConfigError):
    """Every error found in one document, in document order. ``str()`` is one error per line,
    each with its full location, e.g. ``routes.yml: routes[2] (orders) uri: ...``."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors: tuple[ConfigError, ...] = tuple(errors)
        super().__init__("\n".join(str(error) for error in self.errors))

    def at(self, prefix: str) -> ConfigErrors:
        return ConfigErrors([error.at(prefix) for error in self.errors])

    def __iter__(self) -> Iterator[ConfigError]:
        return iter(self.errors)

    def __len__(self) -> int:
        return len(self.errors)


class ErrorCollector:
    """Gathers the errors of one document with their places. ``add`` takes the labels from the
    outside in (``"routes[2] (orders)"``, ``"filters[0] (RewritePath)"``) and a sort key, and
    prefixes the document's name."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._items: list[tuple[tuple[int, ...], ConfigError]] = []

    def add(self, error: ConfigError, *labels: str, key: tuple[int, ...] = ()) -> None:
        if isinstance(error, ConfigErrors):
            for item in error.errors:
                self.add(item, *labels, key=key)
            return
        for label in reversed(labels):
            error = error.at(label)
        location = f"{self.source}: {error.location}" if error.location else self.source
        self._items.append((key, ConfigError(error.reason, location)))

    def __len__(self) -> int:
        return len(self._items)

    def errors(self) -> list[ConfigError]:
        return [error for _, error in sorted(self._items, key=lambda item: item[0])]

    def raise_if_any(self) -> None:
        if self._items:
            raise ConfigErrors(self.errors())


@dataclass(frozen=True, slots=True)
class DocumentLayout:
    """Where each part of a (possibly partial) config sits in its document, so errors found
    later — while building — name the document's keys and indexes, not the config's."""

    source: str
    routes_key: str = "routes"
    default_filters_key: str = "default-filters"
    # The document index of each ``config.routes`` / ``config.default_filters`` entry.
    route_indexes: tuple[int, ...] = ()
    default_filter_indexes: tuple[int, ...] = ()

    @classmethod
    def of(cls, config: GatewayConfig) -> DocumentLayout:
        """The layout of a complete config that came from a top-level document."""
        return cls(
            source=config.source,
            route_indexes=tuple(range(len(config.routes))),
            default_filter_indexes=tuple(range(len(config.default_filters))),
        )

    def route_index(self, position: int) -> int:
        return self.route_indexes[position] if position < len(self.route_indexes) else position

    def default_filter_index(self, position: int) -> int:
        if position < len(self.default_filter_indexes):
            return self.default_filter_indexes[position]
        return position

    def route_label(self, position: int, route_id: str | None) -> str:
        label = f"{self.routes_key}[{self.route_index(position)}]"
        return f"{label} ({route_id})" if route_id else label

    def default_filter_label(self, position: int, name: str | None) -> str:
        label = f"{self.default_filters_key}[{self.default_filter_index(position)}]"
        return f"{label} ({name})" if name else label

    def route_key(self, position: int) -> tuple[int, ...]:
        return (_RANK_ROUTES, self.route_index(position))

    def default_filter_key(self, position: int) -> tuple[int, ...]:
        return (_RANK_DEFAULT_FILTERS, self.default_filter_index(position))


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


# -- text ------------------------------------------------------------------------------------


class _Loader(_SafeLoader):
    """Safe YAML that refuses duplicate keys (PyYAML silently keeps the last one, which drops a
    whole ``filters:`` list unnoticed) and keeps timestamps as text (SCG parses its own
    ``ZonedDateTime`` strings; a YAML datetime would lose the zone's spelling)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _SafeLoader.yaml_implicit_resolvers.items()
}


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")  # let the YAML reader report it with its line
    return dict(pairs)


def read_text(text: str, source: str) -> object:
    """The data of a YAML or JSON document. JSON is tried first when the text looks like it
    (it is faster and stricter); anything else, or JSON that fails, is read as YAML, whose
    errors carry line and column."""
    if text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text, object_pairs_hook=_json_object)
        except ValueError:
            pass
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}: line {mark.line + 1}, column {mark.column + 1}" if mark else source
        problem = exc.problem or exc.context or "malformed document"
        raise ConfigError(f"invalid YAML: {problem}", where) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", source) from exc


def read_file(path: str | Path) -> str:
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror or exc}", source) from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", source) from exc


# -- public entry points ---------------------------------------------------------------------


def load_config(
    path: str | Path,
    predicates: Mapping[str, PredicateFactory],
    filters: Mapping[str, FilterFactory],
) -> GatewayConfig:
    """Read and check a route file. Raises ``ConfigError`` (``ConfigErrors`` when the document
    itself has mistakes, listing all of them)."""
    return parse_text(read_file(path), str(path), predicates, filters)


def parse_text(
    text: str,
    source: str,
    predicates: Mapping[str, PredicateFactory],
    filters: Mapping[str, FilterFactory],
) -> GatewayConfig:
    return parse_document(read_text(text, source), source, predicates, filters)


def parse_document(
    data: object,
    source: str,
    predicates: Mapping[str, PredicateFactory],
    filters: Mapping[str, FilterFactory],
) -> GatewayConfig:
    result = collect_document(data, source, predicates, filters)
    result.errors.raise_if_any()
    return result.config


def collect_document(
    data: object,
    source: str,
    predicates: Mapping[str, ShortcutSpec],
    filters: Mapping[str, ShortcutSpec],
) -> LoadResult:
    """Read ``data`` as far as possible, collecting every error instead of raising."""
    return _DocumentReader(source, predicates, filters).read(data)


# -- the reader ------------------------------------------------------------------------------


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


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value.strip())
    return None


def _unknown_key(key: str, allowed: Sequence[str], what: str = "key") -> ConfigError:
    matches = suggest(key, allowed, limit=1)
    hint = f" (did you mean {matches[0]}?)" if matches else ""
    return ConfigError(f"unknown {what} {key!r}{hint}; allowed: {', '.join(allowed)}")


class _DocumentReader:
    def __init__(
        self,
        source: str,
        predicates: Mapping[str, ShortcutSpec],
        filters: Mapping[str, ShortcutSpec],
    ) -> None:
        self.source = source
        self.predicates = predicates
        self.filters = filters
        self.errors = ErrorCollector(source)

    def _fail(self, reason: str, *labels: str, key: tuple[int, ...]) -> None:
        self.errors.add(ConfigError(reason), *labels, key=key)

    def read(self, data: object) -> LoadResult:
        empty = LoadResult(
            GatewayConfig(source=self.source), DocumentLayout(self.source), self.errors
        )
        if data is None:
            return empty
        if not isinstance(data, Mapping):
            self._fail(
                f"the document must be a mapping (with routes:), got {describe_value(data)}",
                key=(_RANK_DOCUMENT,),
            )
            return empty
        self._check_top_level(data)
        routes_key, raw_routes = self._section(data, ("routes",), "routes")
        default_key, raw_defaults = self._section(data, _DEFAULT_FILTER_KEYS, "default-filters")
        default_filters, default_indexes = self._default_filters(default_key, raw_defaults)
        routes, route_indexes, unbuilt = self._routes(routes_key, raw_routes)
        services, policies = self._services(data.get("services"))
        config = GatewayConfig(
            routes=tuple(routes),
            default_filters=tuple(default_filters),
            services=services,
            source=self.source,
            service_policies=policies,
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
        if any(key == "spring" or key.startswith("spring.") for key in keys):
            return
        for key in keys:
            # ``x-`` keys are free for YAML anchors to live under, as in Compose files.
            if key not in _TOP_LEVEL_KEYS and not key.startswith("x-"):
                allowed = ("routes", "default-filters", "services", "spring")
                error = _unknown_key(key, allowed, "top-level key")
                self.errors.add(error, key=(_RANK_DOCUMENT,))

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
            self._fail(
                f"{default_key} defined in more than one place ({places}); keep one",
                key=(_RANK_DOCUMENT,),
            )
        return found[0]

    def _list(self, value: object, label: str, key: tuple[int, ...]) -> list[Any]:
        if value is None:
            return []
        if isinstance(value, list):
            return value
        self._fail(f"must be a list, got {describe_value(value)}", label, key=key)
        return []

    # -- default filters -----------------------------------------------------------------------

    def _default_filters(
        self, key_name: str, raw: object
    ) -> tuple[list[FilterDefinition], list[int]]:
        definitions: list[FilterDefinition] = []
        indexes: list[int] = []
        for index, entry in enumerate(self._list(raw, key_name, (_RANK_DEFAULT_FILTERS,))):
            name = entry_name(entry)
            label = f"{key_name}[{index}] ({name})" if name else f"{key_name}[{index}]"
            try:
                definitions.append(parse_filter(entry, self.filters))
                indexes.append(index)
            except ConfigError as exc:
                self.errors.add(exc, label, key=(_RANK_DEFAULT_FILTERS, index))
        return definitions, indexes

    # -- routes --------------------------------------------------------------------------------

    def _routes(
        self, key_name: str, raw: object
    ) -> tuple[list[RouteDefinition], list[int], list[UnbuiltRoute]]:
        routes: list[RouteDefinition] = []
        indexes: list[int] = []
        unbuilt: list[UnbuiltRoute] = []
        first_seen: dict[str, int] = {}
        for index, entry in enumerate(self._list(raw, key_name, (_RANK_ROUTES,))):
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
        key = (_RANK_ROUTES, index)
        label = f"{key_name}[{index}]"
        if not isinstance(entry, Mapping):
            self._fail(
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
                self._fail(
                    f"duplicate id {route_id!r} (also {key_name}[{first_seen[route_id]}])",
                    label,
                    key=key,
                )
            else:
                first_seen[route_id] = index

        for raw_key in entry:
            if raw_key not in ROUTE_KEYS:
                self.errors.add(_unknown_key(str(raw_key), ROUTE_KEYS), label, key=key)

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
            self._fail("missing required key 'id'", label, key=key)
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self._fail(f"id must be a string, got {describe_value(value)}", label, key=key)
            return None
        route_id = str(value).strip()
        if not route_id:
            self._fail("id must not be empty", label, key=key)
            return None
        return route_id

    def _route_uri(self, value: object, label: str, key: tuple[int, ...]) -> str | None:
        if value is None:
            self._fail("missing required key 'uri'", label, key=key)
            return None
        if not isinstance(value, str):
            self._fail(f"uri must be a string, got {describe_value(value)}", label, key=key)
            return None
        try:
            RouteUri.parse(value)
        except ConfigError as exc:
            self.errors.add(exc, label, "uri", key=key)
            return None
        return value

    def _route_order(self, value: object, label: str, key: tuple[int, ...]) -> int:
        if value is None:
            return 0
        order = _as_int(value)
        if order is None:
            self._fail(f"order must be an integer, got {describe_value(value)}", label, key=key)
            return 0
        return order

    def _route_metadata(self, value: object, label: str, key: tuple[int, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self._fail(f"metadata must be a mapping, got {describe_value(value)}", label, key=key)
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
        for index, entry in enumerate(self._list(raw, f"{label} {field}", key)):
            name = entry_name(entry)
            item = f"{field}[{index}] ({name})" if name else f"{field}[{index}]"
            try:
                definitions.append((item, parse(entry, factories)))
            except ConfigError as exc:
                self.errors.add(exc, label, item, key=key)
        return definitions

    # -- services ------------------------------------------------------------------------------

    def _services(
        self, raw: object
    ) -> tuple[dict[str, tuple[InstanceDefinition, ...]], dict[str, dict[str, Any]]]:
        """``name: [instances]``, or ``name: {instances: [...], load-balancer: ..., ...}`` to
        give the service policy defaults too (a service known only to Consul may be listed
        with a policy and no instances)."""
        if raw is None:
            return {}, {}
        if not isinstance(raw, Mapping):
            self._fail(
                "services must be a mapping of service name to a list of instances, "
                f"got {describe_value(raw)}",
                key=(_RANK_SERVICES,),
            )
            return {}, {}
        services: dict[str, tuple[InstanceDefinition, ...]] = {}
        policies: dict[str, dict[str, Any]] = {}
        for position, (raw_name, raw_instances) in enumerate(raw.items()):
            name = str(raw_name).strip() if raw_name is not None else ""
            label = f"services.{name}"
            key = (_RANK_SERVICES, position)
            if not name:
                self._fail("service name must not be empty", "services", key=key)
                continue
            if isinstance(raw_instances, Mapping) and (
                "host" in raw_instances or "port" in raw_instances
            ):
                self._fail(
                    "must be a list of instances (or a mapping with instances: and policy keys),"
                    " got a single instance",
                    label,
                    key=key,
                )
                continue
            if isinstance(raw_instances, Mapping):
                policy = {str(k): v for k, v in raw_instances.items() if k != "instances"}
                unknown = sorted(set(policy) - set(SERVICE_POLICY_KEYS))
                for bad in unknown:
                    self.errors.add(_unknown_key(bad, SERVICE_POLICY_KEYS), label, key=key)
                try:
                    route_policy(policy)
                except ConfigError as exc:
                    # The same checks as route metadata; here the keys sit on the service.
                    message = str(exc).removeprefix("metadata ")
                    self.errors.add(ConfigError(message), label, key=key)
                if policy and not unknown:
                    policies[name] = policy
                if "instances" not in raw_instances:
                    continue  # policy only: the instances come from discovery
                raw_instances = raw_instances["instances"]
                label = f"{label}.instances"
            instances: list[InstanceDefinition] = []
            ids: dict[str, int] = {}
            for index, entry in enumerate(self._list(raw_instances, label, key)):
                instance = self._instance(entry, f"{label}[{index}]", key)
                if instance is None:
                    continue
                if instance.instance_id is not None:
                    if instance.instance_id in ids:
                        self._fail(
                            f"duplicate instance id {instance.instance_id!r} "
                            f"(also {label}[{ids[instance.instance_id]}])",
                            f"{label}[{index}]",
                            key=key,
                        )
                        continue
                    ids[instance.instance_id] = index
                instances.append(instance)
            services[name] = tuple(instances)
        return services, policies

    def _instance(
        self, entry: object, label: str, key: tuple[int, ...]
    ) -> InstanceDefinition | None:
        if not isinstance(entry, Mapping):
            self._fail(
                f"expected an instance (a mapping with host and port), got {describe_value(entry)}",
                label,
                key=key,
            )
            return None
        before = len(self.errors)
        for raw_key in entry:
            if raw_key not in INSTANCE_KEYS:
                self.errors.add(_unknown_key(str(raw_key), INSTANCE_KEYS), label, key=key)

        host = entry.get("host")
        if host is None:
            self._fail("missing required key 'host'", label, key=key)
        elif not isinstance(host, str) or not host.strip():
            self._fail(
                f"host must be a non-empty string, got {describe_value(host)}", label, key=key
            )

        raw_port = entry.get("port")
        port = _as_int(raw_port)
        if raw_port is None:
            self._fail("missing required key 'port'", label, key=key)
        elif port is None:
            self._fail(f"port must be an integer, got {describe_value(raw_port)}", label, key=key)
        elif not 1 <= port <= 65535:
            self._fail(f"port must be 1..65535, got {port}", label, key=key)

        secure = False
        if entry.get("secure") is not None:
            try:
                secure = parse_bool(entry["secure"])
            except ValueError:
                self._fail(
                    f"secure must be true or false, got {describe_value(entry['secure'])}",
                    label,
                    key=key,
                )

        weight = 1
        if entry.get("weight") is not None:
            parsed = _as_int(entry["weight"])
            if parsed is None or parsed < 0:
                self._fail(
                    f"weight must be an integer >= 0, got {describe_value(entry['weight'])}",
                    label,
                    key=key,
                )
            else:
                weight = parsed

        metadata = self._instance_metadata(entry.get("metadata"), label, key)

        instance_id: str | None = None
        raw_id = entry.get("id")
        if raw_id is not None:
            if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or not str(raw_id):
                self._fail(f"id must be a string, got {describe_value(raw_id)}", label, key=key)
            else:
                instance_id = str(raw_id)

        if len(self.errors) != before:
            return None
        assert isinstance(host, str)  # checked above
        assert port is not None
        return InstanceDefinition(
            host=host.strip(),
            port=port,
            secure=secure,
            weight=weight,
            metadata=metadata,
            instance_id=instance_id,
        )

    def _instance_metadata(self, value: object, label: str, key: tuple[int, ...]) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self._fail(f"metadata must be a mapping, got {describe_value(value)}", label, key=key)
            return {}
        metadata: dict[str, str] = {}
        for name, item in value.items():
            if isinstance(item, bool):
                metadata[str(name)] = "true" if item else "false"
            elif isinstance(item, str | int | float):
                metadata[str(name)] = str(item)
            else:
                self._fail(
                    f"metadata.{name} must be a single value, got {describe_value(item)}",
                    label,
                    key=key,
                )
        return metadata
