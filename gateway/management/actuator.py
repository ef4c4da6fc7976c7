"""The management port: Spring Boot actuator health groups and SCG's gateway actuator API.

Served by aiohttp (not the data plane): it is low-traffic, and aiohttp gives us routing and
JSON for free. Route writes are off unless ``GATEWAY_MANAGEMENT_WRITE=true``. With
``GATEWAY_MANAGEMENT_TOKEN`` set, every endpoint but the liveness and readiness probes needs it
as a bearer token (``security/management.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CONTENT_TYPE_LATEST

from discovery.lane import lane_of
from gateway.dispatch import Dispatcher
from gateway.engine.response_writer import ResponseWriter
from gateway.engine.upgrade import Tunnel
from gateway.errors import ConfigError
from gateway.forwarder import Forwarder
from gateway.management import dashboard, explain_api, live_api, shapes
from gateway.management.responses import error_response, json_response
from gateway.management.view import ManagementView
from gateway.observability.observer import RequestObserver
from gateway.routing.route import RouteUri
from gateway.security.management import OPEN_PATHS, BearerToken
from resilience.picker import InstancePicker

GATEWAY_KEY = web.AppKey("gateway", ManagementView)
BASE = "/actuator/gateway"


def _qualified(code: Any) -> str:
    return f"{code.__module__}.{code.__qualname__}"


# ``/globalfilters``: SCG maps each of its global filters' ``toString`` (a class name and an
# identity hash) to its order. We have no global filter chain; listed instead is the code that
# does the work of each SCG global filter we have an equivalent of, with that filter's order.
GLOBAL_FILTERS: Mapping[str, int] = {
    _qualified(ResponseWriter): -1,  # NettyWriteResponseFilter
    _qualified(RequestObserver): 0,  # GatewayMetricsFilter
    _qualified(RouteUri): 10000,  # RouteToRequestUrlFilter (resolved once, when built)
    _qualified(InstancePicker): 10150,  # ReactiveLoadBalancerClientFilter
    _qualified(Tunnel): 2147483646,  # WebsocketRoutingFilter
    _qualified(Forwarder): 2147483647,  # NettyRoutingFilter
    # Named through the class: a method compiled with mypyc has no ``__qualname__``.
    f"{_qualified(Dispatcher)}.forward": 2147483647,  # ForwardRoutingFilter
}


def _gateway(request: web.Request) -> ManagementView:
    return request.app[GATEWAY_KEY]


_json = json_response
_error = error_response


async def health(request: web.Request) -> web.Response:
    gw = _gateway(request)
    ready = gw.serving and gw.discovery_ready
    components = {
        "liveness": {"status": "UP"},
        "readiness": {"status": "UP" if ready else "OUT_OF_SERVICE"},
        "routes": {
            "status": "UP" if gw.routes.last_error is None else "DEGRADED",
            "details": {
                "count": len(gw.table),
                **({"lastError": gw.routes.last_error} if gw.routes.last_error else {}),
            },
        },
        "discovery": {
            "status": "UP" if gw.discovery_ready else "DOWN",
            "details": _discovery_details(gw),
        },
    }
    status = "UP" if ready else "OUT_OF_SERVICE"
    return _json({"status": status, "components": components}, 200 if ready else 503)


async def liveness(request: web.Request) -> web.Response:
    return _json({"status": "UP"})


async def readiness(request: web.Request) -> web.Response:
    gw = _gateway(request)
    ready = gw.serving and gw.discovery_ready
    body: dict[str, Any] = {"status": "UP" if ready else "OUT_OF_SERVICE"}
    if gw.settings.discovery_mode == "consul":
        body["details"] = _discovery_details(gw)
    return _json(body, 200 if ready else 503)


def _discovery_details(gw: ManagementView) -> dict[str, Any]:
    return {"services": list(gw.registry.services()), **gw.registry.status(), **gw.membership()}


async def services(request: web.Request) -> web.Response:
    """Each known service with its instances, health and snapshot age (ours, not SCG's)."""
    gw = _gateway(request)
    out = gw.registry.describe()
    runtimes = gw.runtimes.known()
    by_service = live_api.breakers_by_service(gw)
    for view in out:
        service = view["service"]
        if service in runtimes:
            view.update(runtimes[service].snapshot())
        view["circuitBreakers"] = by_service.get(service, {})
        if "instances" in view:
            _add_lanes(view)
    return _json(out)


def _add_lanes(view: dict[str, Any]) -> None:
    """Each instance's gray-release lane, and ``lanes``: routable instances per lane."""
    lanes: dict[str, int] = {}
    for instance in view["instances"]:
        lane = lane_of(instance.get("metadata") or {}, instance.get("tags") or ())
        instance["lane"] = lane
        if instance.get("routable", True):
            lanes[lane] = lanes.get(lane, 0) + 1
    view["lanes"] = dict(sorted(lanes.items()))


async def mirrors(request: web.Request) -> web.Response:
    """Each route's Mirror filters: how their copies ended, their comparisons and the last
    differences found (ours, not SCG's; this process's counts)."""
    return _json(_gateway(request).mirrors.snapshot())


async def index(request: web.Request) -> web.Response:
    gw = _gateway(request)
    listed = shapes.index(BASE, (route.id for route in gw.table))
    if not gw.settings.dashboard:  # GATEWAY_DASHBOARD=false: no live numbers served
        listed = [e for e in listed if not e["href"].endswith(("/stats", "/stats/stream"))]
    return _json(listed)


def _posted(gw: ManagementView, route_id: str) -> bool:
    """Written through the actuator (SCG shows such a route's metadata as Jackson read it)."""
    return route_id in gw.routes.api_definitions


async def routes(request: web.Request) -> web.Response:
    gw = _gateway(request)
    return _json([shapes.route_object(r, posted=_posted(gw, r.id)) for r in gw.table])


async def route_get(request: web.Request) -> web.Response:
    gw = _gateway(request)
    route_id = request.match_info["id"]
    route = gw.table.get(route_id)
    if route is None:
        return _error(404, f"no route with id {route_id!r}", request.path)
    return _json(shapes.route_object(route, posted=_posted(gw, route_id)))


async def combined_filters(request: web.Request) -> web.Response:
    """SCG answers with ``{Route.toString(): order}`` for the route, ``{}`` for an unknown id
    (its own TODO says global filters are missing from it; they are here too)."""
    gw = _gateway(request)
    route = gw.table.get(request.match_info["id"])
    if route is None:
        return _json({})
    return _json({shapes.route_text(route, posted=_posted(gw, route.id)): route.order})


def _writes_allowed(request: web.Request) -> web.Response | None:
    gw = _gateway(request)
    if not gw.settings.management_write:
        return _error(
            403, "route writes are disabled (set GATEWAY_MANAGEMENT_WRITE=true)", request.path
        )
    if gw.settings.workers > 1:
        return _error(
            409,
            "route writes apply to one process only; with GATEWAY_WORKERS > 1 edit the route "
            "file and POST /actuator/gateway/refresh",
            request.path,
        )
    return None


async def route_post(request: web.Request) -> web.Response:
    refused = _writes_allowed(request)
    if refused is not None:
        return refused
    route_id = request.match_info["id"]
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, "body must be a JSON route definition", request.path)
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object", request.path)
    body = {**body, "id": route_id}
    gw = _gateway(request)
    try:
        definition = gw.routes.validate_definition_document(body, f"POST {request.path}")
        gw.routes.put_api_route(definition)
    except ConfigError as exc:
        return _error(400, str(exc), request.path)
    return web.Response(status=201)


async def route_delete(request: web.Request) -> web.Response:
    refused = _writes_allowed(request)
    if refused is not None:
        return refused
    route_id = request.match_info["id"]
    if not _gateway(request).routes.delete_api_route(route_id):
        return _error(404, f"no route with id {route_id!r}", request.path)
    return web.Response(status=200)


async def route_definitions(request: web.Request) -> web.Response:
    gw = _gateway(request)
    return _json(
        [shapes.definition_object(d, posted=_posted(gw, d.id)) for d in gw.routes.definitions()]
    )


async def global_filters(request: web.Request) -> web.Response:
    return _json(dict(GLOBAL_FILTERS))


async def route_filters(request: web.Request) -> web.Response:
    # A factory switched off (filter.<name>.enabled: false) is no bean in SCG: not listed.
    routes = _gateway(request).routes
    off = routes.file_config.spring.filters.disabled_filters
    factories = {name: f for name, f in routes.filters.items() if name not in off}
    return _json(shapes.factory_names(factories, shapes.filter_class))


async def route_predicates(request: web.Request) -> web.Response:
    routes = _gateway(request).routes
    off = routes.file_config.spring.filters.disabled_predicates
    factories = {name: p for name, p in routes.predicates.items() if name not in off}
    return _json(shapes.factory_names(factories, shapes.predicate_class))


def refresh_scope(values: Sequence[str]) -> dict[str, str]:
    """SCG's ``?metadata=key:value`` (repeated, or comma-separated as Spring binds one value
    to a ``List<String>``): the metadata a route must have all of to be refreshed. The value is
    the text up to a second colon, as SCG's ``split(":")`` takes it. Raises ValueError where SCG
    would fail (a key twice) or silently refresh nothing (no value)."""
    scope: dict[str, str] = {}
    for value in values:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            key, *rest = item.split(":")
            while rest and not rest[-1]:
                rest.pop()  # Java's split drops trailing empty fields
            if not rest:
                raise ValueError(f"metadata {item!r} has no value (expected key:value)")
            if key in scope:
                raise ValueError(f"metadata key {key!r} given twice")
            scope[key] = rest[0]
    return scope


async def refresh(request: web.Request) -> web.Response:
    """Without ``metadata``: every route source is read again. With it: only the file and KV
    routes whose metadata matches are replaced (SCG 4.1+); one process's table, so refused with
    several workers (the supervisor's reload of the others has no scope)."""
    gw = _gateway(request)
    try:
        scope = refresh_scope(request.query.getall("metadata", []))
    except ValueError as exc:
        return _error(400, str(exc), request.path)
    if scope and gw.settings.workers > 1:
        return _error(
            409,
            "a refresh by metadata applies to one process only; with GATEWAY_WORKERS > 1 "
            "POST /actuator/gateway/refresh without it",
            request.path,
        )
    try:
        kv = await gw.read_kv()
    except ConfigError as exc:
        return _error(503, f"route refresh needs Consul: {exc}", request.path)
    error = gw.refresh(kv, scope=scope or None)
    if error is not None:
        return _error(400, error, request.path)
    return web.Response(status=200)


async def prometheus(request: web.Request) -> web.Response:
    # CONTENT_TYPE_LATEST carries a charset, so it goes in the headers (aiohttp rejects a
    # charset in content_type=).
    body = _gateway(request).metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def bearer_middleware(token: BearerToken) -> Middleware:
    """Every request needs the token, but those the router sends to an open probe. The
    exemption follows the route that matched, not the path's text, so no spelling of another
    path (or an unknown one: 401, not 404) gets through without it."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        if resource is not None and resource.canonical in OPEN_PATHS:
            return await handler(request)
        authorization = request.headers.get("Authorization")
        if token.admits(authorization):
            return await handler(request)
        challenge = 'Bearer realm="meshgate"'
        if authorization is None:
            message = "a bearer token is required (Authorization: Bearer <token>)"
        else:
            challenge += ', error="invalid_token"'
            message = "the bearer token is not valid"
        response = _error(401, message, request.path)
        response.headers["WWW-Authenticate"] = challenge
        return response

    return authenticate


def build_management_app(gateway: ManagementView) -> web.Application:
    token = gateway.settings.management_token
    app = web.Application(middlewares=[bearer_middleware(BearerToken(token))] if token else [])
    app[GATEWAY_KEY] = gateway
    app.router.add_get("/actuator/health", health)
    app.router.add_get("/actuator/health/liveness", liveness)
    app.router.add_get("/actuator/health/readiness", readiness)
    app.router.add_get(BASE, index)
    app.router.add_get("/actuator/gateway/routes", routes)
    app.router.add_get("/actuator/gateway/routes/{id}", route_get)
    app.router.add_get("/actuator/gateway/routes/{id}/combinedfilters", combined_filters)
    app.router.add_post("/actuator/gateway/routes/{id}", route_post)
    app.router.add_delete("/actuator/gateway/routes/{id}", route_delete)
    app.router.add_get("/actuator/gateway/routedefinitions", route_definitions)
    app.router.add_get("/actuator/gateway/globalfilters", global_filters)
    app.router.add_get("/actuator/gateway/routefilters", route_filters)
    app.router.add_get("/actuator/gateway/routepredicates", route_predicates)
    app.router.add_post("/actuator/gateway/refresh", refresh)
    app.router.add_get("/actuator/gateway/services", services)
    app.router.add_get("/actuator/gateway/mirrors", mirrors)
    app.router.add_get("/actuator/prometheus", prometheus)
    explain_api.add_routes(app, GATEWAY_KEY)
    live_api.add_routes(app, GATEWAY_KEY, stats=gateway.settings.dashboard)
    if gateway.settings.dashboard:
        dashboard.add_routes(app)
    return app
