"""The JSON SCG 5.0.4's gateway actuator answers with, built from our routes and definitions.

Tools written against SCG (dashboards, scripts, Spring Boot Admin) read these shapes, so they
follow what a real SCG 5.0.4 returns for the same routes, key order included: SCG serialises a
route into a ``HashMap`` (so its keys come out in that map's bucket order, written down here)
and a ``RouteDefinition`` with Jackson 3 (properties sorted by name). Where SCG's text holds
something only a JVM has (a lambda's class name, an identity hash), we put a stand-in of the
same form, said so where it is made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from gateway.config.schema import FilterDefinition, PredicateDefinition, RouteDefinition
from gateway.routing.route import Route

# SCG combines a route's predicates as ``reduce(AsyncPredicate.from(exchange -> true), and)``,
# so every route's predicate text starts with that always-true seed: a JVM lambda whose name
# changes from run to run (``RouteDefinitionRouteLocator$$Lambda$1299/0x00007fdfb05e4440``).
# Ours is a fixed stand-in of the same form.
PREDICATE_SEED = "RouteDefinitionRouteLocator$$Lambda$0/0x0000000000000000"


# -- routes ------------------------------------------------------------------------------------
def predicate_text(route: Route) -> str:
    """``((seed && first) && second)``: SCG's ``AndAsyncPredicate`` nesting, left to right."""
    text = PREDICATE_SEED
    for predicate in route.predicates:
        text = f"({text} && {predicate.describe()})"
    return text


def filter_orders(route: Route) -> list[int]:
    """The order SCG gives each of ``route.filters``: a default filter and a route filter
    each get their 1-based place in their own list, and the merged list is stable-sorted by
    it (``routing.builder.scg_filter_order``), so the orders in merged order are the sorted
    union of ``1..defaults`` and ``1..own``."""
    own = len(route.definition.filters)
    defaults = len(route.filters) - own
    return sorted([*range(1, defaults + 1), *range(1, own + 1)])


def filter_texts(route: Route) -> list[str]:
    """``[[AddRequestHeader X-Request-red = 'blue'], order = 1]``: SCG's
    ``OrderedGatewayFilter.toString``."""
    return [
        f"[{gateway_filter.describe()}, order = {order}]"
        for gateway_filter, order in zip(route.filters, filter_orders(route), strict=True)
    ]


def route_object(route: Route, *, posted: bool = False) -> dict[str, Any]:
    """``/actuator/gateway/routes`` and ``/routes/{id}``: the keys in the order SCG's
    ``HashMap`` gives them, ``metadata`` only when the route has some. ``posted``: the route
    came through the actuator (its metadata is as Jackson read it, not as Spring bound it)."""
    view: dict[str, Any] = {"predicate": predicate_text(route)}
    if route.metadata:
        view["metadata"] = route_metadata(route.metadata, posted=posted)
    view["route_id"] = route.id
    view["filters"] = filter_texts(route)
    view["uri"] = route.uri.raw
    view["order"] = route.order
    return view


def route_text(route: Route, *, posted: bool = False) -> str:
    """SCG's ``Route.toString()``, the key ``/routes/{id}/combinedfilters`` answers with."""
    filters = ", ".join(filter_texts(route))
    metadata = route_metadata(route.metadata, posted=posted)
    return (
        f"Route{{id='{route.id}', uri={route.uri.raw}, order={route.order}, "
        f"predicate={predicate_text(route)}, gatewayFilters=[{filters}], "
        f"metadata={java_text(metadata)}}}"
    )


def route_metadata(metadata: Mapping[str, Any], *, posted: bool) -> dict[str, Any]:
    """Metadata as an SCG ``Route`` holds it: copied into a ``HashMap`` (so in its order), and,
    for a route from a document, with lists as Spring's binder leaves them in a
    ``Map<String, Object>``: maps of ``"0"``, ``"1"``... (Jackson, reading a posted route,
    keeps them lists)."""
    return hash_map_order(metadata if posted else bound_metadata(metadata))


def bound_metadata(value: Any) -> Any:
    """Lists, at any depth, as the index-keyed maps Spring's binder makes of them."""
    if isinstance(value, Mapping):
        return {str(k): bound_metadata(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return {str(i): bound_metadata(v) for i, v in enumerate(value)}
    return value


def java_hash(text: str) -> int:
    """Java's ``String.hashCode`` (over UTF-16 code units), as an unsigned 32-bit number."""
    data = text.encode("utf-16-be", "surrogatepass")
    h = 0
    for index in range(0, len(data), 2):
        h = (31 * h + (data[index] << 8 | data[index + 1])) & 0xFFFFFFFF
    return h


def hash_map_order(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """``mapping`` in the order ``new HashMap<>(mapping)`` iterates it: by bucket (the hash,
    its high half folded in, masked to the table size that constructor picks), keys of one
    bucket in insertion order. Only the top level: nested maps keep their order, as the
    binder's ``LinkedHashMap`` does."""
    wanted = int(len(mapping) / 0.75 + 1.0)
    size = 1
    while size < wanted:
        size *= 2

    def bucket(item: tuple[str, Any]) -> int:
        h = java_hash(str(item[0]))
        return (h ^ (h >> 16)) & (size - 1)

    return dict(sorted(mapping.items(), key=bucket))


def java_text(value: object) -> str:
    """``toString()`` of the Java value SCG would hold: ``{k=v, k2=[a, b]}``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={java_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(java_text(item) for item in value) + "]"
    return str(value)


# -- definitions -------------------------------------------------------------------------------
def definition_object(definition: RouteDefinition, *, posted: bool = False) -> dict[str, Any]:
    """``/actuator/gateway/routedefinitions``: SCG's ``RouteDefinition`` as Jackson 3 writes
    it (properties by name). ``enabled`` is always true: SCG leaves a disabled route out of
    the listing altogether. Metadata: as the binder leaves it for a document's route (in a
    ``HashMap``, lists as maps), as posted for one written through the actuator."""
    metadata = definition.metadata
    return {
        "enabled": True,
        "filters": [_entry_object(f) for f in definition.filters],
        "id": definition.id,
        "metadata": dict(metadata) if posted else hash_map_order(bound_metadata(metadata)),
        "order": definition.order,
        "predicates": [_entry_object(p) for p in definition.predicates],
        "uri": definition.uri,
    }


# Arguments that are secrets: shown masked, never as written (the management port may be
# read by more people than the route file).
SECRET_ARGS: dict[str, frozenset[str]] = {"JwtAuth": frozenset({"secret"})}
MASK = "******"


def _entry_object(entry: PredicateDefinition | FilterDefinition) -> dict[str, Any]:
    written = entry.written if entry.written is not None else entry.args
    args = spring_args(written)
    secret = SECRET_ARGS.get(entry.name)
    if secret:
        args = {k: MASK if _relaxed(k) in secret else v for k, v in args.items()}
    return {"args": args, "name": entry.name}


def _relaxed(name: str) -> str:
    return name.replace("-", "").replace("_", "").lower()


def spring_args(args: Mapping[str, Any]) -> dict[str, str]:
    """Arguments as SCG's ``Map<String, String>`` holds them after Spring bound the document:
    nested mappings and lists flattened to ``backoff.firstBackoff`` and ``patterns.0`` keys,
    every value a string (``3``, ``false``; an empty value ``""``)."""
    out: dict[str, str] = {}
    for key, value in args.items():
        _flatten(str(key), value, out)
    return out


def _flatten(key: str, value: object, out: dict[str, str]) -> None:
    if isinstance(value, Mapping):
        for sub, item in value.items():
            _flatten(f"{key}.{sub}", item, out)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _flatten(f"{key}.{index}", item, out)
    elif value is None:
        out[key] = ""
    elif isinstance(value, bool):
        out[key] = "true" if value else "false"
    else:
        out[key] = str(value)


# -- factories ---------------------------------------------------------------------------------
# SCG's class and ``configClass`` for the factories it ships, as its ``AbstractConfigurable``
# ``toString`` shows them (``ClassUtils.getShortName``): ``<Name>GatewayFilterFactory`` and
# ``<Name>GatewayFilterFactory.Config`` unless listed otherwise. A name SCG does not ship (a
# plugin's) shows as ``<Name>GatewayFilterFactory`` with ``Object``.
_NAME_VALUE = "AbstractNameValueGatewayFilterFactory.NameValueConfig"
_NAME = "AbstractGatewayFilterFactory.NameConfig"
SCG_FILTERS = frozenset(
    {
        "AddRequestHeader", "AddRequestHeadersIfNotPresent", "AddRequestParameter",
        "AddResponseHeader", "CacheRequestBody", "CircuitBreaker", "DedupeResponseHeader",
        "FallbackHeaders", "LocalResponseCache", "MapRequestHeader", "ModifyRequestBody",
        "ModifyResponseBody", "PrefixPath", "PreserveHostHeader", "RedirectTo",
        "RemoveJsonAttributesResponseBody", "RemoveRequestHeader", "RemoveRequestParameter",
        "RemoveResponseHeader", "RequestHeaderSize", "RequestHeaderToRequestUri",
        "RequestRateLimiter", "RequestSize",
        "Retry", "RewriteLocationResponseHeader", "RewritePath", "RewriteRequestParameter",
        "RewriteResponseHeader", "SaveSession", "SecureHeaders", "SetPath", "SetRequestHeader",
        "SetRequestHostHeader", "SetRequestUri", "SetResponseHeader", "SetStatus", "StripPrefix",
    }
)  # fmt: skip
_FILTER_CLASSES = {"CircuitBreaker": "SpringCloudCircuitBreakerResilience4JFilterFactory"}
_FILTER_CONFIGS = {
    **dict.fromkeys(
        ("AddRequestHeader", "AddRequestParameter", "AddResponseHeader", "SetRequestHeader",
         "SetResponseHeader"),
        _NAME_VALUE,
    ),
    **dict.fromkeys(
        ("RemoveRequestHeader", "RemoveRequestParameter", "RemoveResponseHeader",
         "RequestHeaderToRequestUri"),
        _NAME,
    ),
    **dict.fromkeys(
        ("AddRequestHeadersIfNotPresent", "PreserveHostHeader",
         "RemoveJsonAttributesResponseBody", "SaveSession"),
        "Object",
    ),
    "CircuitBreaker": "SpringCloudCircuitBreakerFilterFactory.Config",
    "LocalResponseCache": "LocalResponseCacheGatewayFilterFactory.RouteCacheConfiguration",
    "RequestSize": "RequestSizeGatewayFilterFactory.RequestSizeConfig",
    "Retry": "RetryGatewayFilterFactory.RetryConfig",
}  # fmt: skip
SCG_PREDICATES = frozenset(
    {
        "After", "Before", "Between", "CloudFoundryRouteService", "Cookie", "Header", "Host",
        "Method", "Path", "Query", "ReadBody", "RemoteAddr", "Version", "Weight",
        "XForwardedRemoteAddr",
    }
)  # fmt: skip
_PREDICATE_CONFIGS = {"CloudFoundryRouteService": "Object", "Weight": "WeightConfig"}


def filter_class(name: str) -> tuple[str, str]:
    """(class, configClass) SCG shows for the filter factory ``name``."""
    class_name = _FILTER_CLASSES.get(name, f"{name}GatewayFilterFactory")
    if name not in SCG_FILTERS:
        return class_name, "Object"
    return class_name, _FILTER_CONFIGS.get(name, f"{class_name}.Config")


def predicate_class(name: str) -> tuple[str, str]:
    """(class, configClass) SCG shows for the predicate factory ``name``."""
    class_name = f"{name}RoutePredicateFactory"
    if name not in SCG_PREDICATES:
        return class_name, "Object"
    return class_name, _PREDICATE_CONFIGS.get(name, f"{class_name}.Config")


def factory_names(
    factories: Mapping[str, object], classes: Callable[[str], tuple[str, str]]
) -> dict[str, None]:
    """``/routefilters`` and ``/routepredicates``: SCG maps each factory's ``toString`` —
    ``[AddRequestHeaderGatewayFilterFactory@517704 configClass = ...]`` — to its order, null
    as none of them is ``Ordered``. The ``@`` part is the JVM's identity hash there; here it
    is the factory object's ``id``, as stable and as meaningless."""
    out: dict[str, None] = {}
    for name, factory in factories.items():
        class_name, config = classes(name)
        out[f"[{class_name}@{id(factory) & 0xFFFFFFFF:x} configClass = {config}]"] = None
    return out


# -- the index -----------------------------------------------------------------------------------
# (path under /actuator/gateway, methods), in the order SCG 5.0.4's HashMap of paths gives.
# The methods are those we serve: SCG also takes POST /routes (several routes at once), which
# we do not; /services and /mirrors are ours.
ENDPOINTS: Sequence[tuple[str, tuple[str, ...]]] = (
    ("/routedefinitions", ("GET",)),
    ("/globalfilters", ("GET",)),
    ("/routefilters", ("GET",)),
    ("/routes/{id}/combinedfilters", ("GET",)),
    ("/routes", ("GET",)),
    ("/routes/{id}", ("POST", "DELETE", "GET")),
    ("/", ("GET",)),
    ("/routepredicates", ("GET",)),
    ("/refresh", ("POST",)),
    ("/services", ("GET",)),
    ("/mirrors", ("GET",)),
    ("/explain", ("GET", "POST")),
    ("/stats", ("GET",)),
    ("/stats/stream", ("GET",)),
    ("/config", ("GET",)),
)


def index(base: str, route_ids: Iterable[str]) -> list[dict[str, Any]]:
    """``GET /actuator/gateway``. As in SCG, every path is expanded once per route (``{id}``
    replaced) and repeats are dropped; so, as in SCG, a gateway without routes lists nothing."""
    ids = list(route_ids)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for path, methods in ENDPOINTS:
        for route_id in ids:
            href = base + path.replace("{id}", route_id)
            if href not in seen:
                seen.add(href)
                out.append({"href": href, "methods": list(methods)})
    return out
