"""The management port: Spring Boot actuator health groups and SCG's gateway actuator API.

Served by aiohttp (not the data plane): it is low-traffic, and aiohttp gives us routing and
JSON for free. Route writes are off unless ``GATEWAY_MANAGEMENT_WRITE=true``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.config.schema import RouteDefinition
from gateway.errors import ConfigError
from gateway.management.view import ManagementView
from gateway.routing.route import Route

GATEWAY_KEY = web.AppKey("gateway", ManagementView)

# The built-in stages of every request, listed like SCG's global filters with their order.
GLOBAL_FILTERS: Mapping[str, int] = {
    "ErrorMapping": -2147483648,
    "RouteMatching": -2147483647,
    "ForwardedHeaders": 0,
    "RemoveHopByHopHeaders": 0,
    "LoadBalancerClient": 10150,
    "ForwardRouting": 2147483647,
    "ProxyRouting": 2147483647,
    "WebsocketRouting": 2147483646,
}


def _gateway(request: web.Request) -> ManagementView:
    return request.app[GATEWAY_KEY]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, indent=None, default=str),
        status=status,
        content_type="application/json",
    )


_PHRASES = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}


def _error(status: int, message: str, path: str) -> web.Response:
    body = {"status": status, "error": _PHRASES.get(status, ""), "message": message, "path": path}
    return _json(body, status)


def route_view(route: Route) -> dict[str, Any]:
    """SCG's verbose route format."""
    predicates = [p.describe() for p in route.predicates]
    if not predicates:
        predicate = "Paths: [/**], match trailing slash: true"
    elif len(predicates) == 1:
        predicate = predicates[0]
    else:
        predicate = "(" + " && ".join(predicates) + ")"
    return {
        "predicate": predicate,
        "route_id": route.id,
        "filters": [f"[{f.describe()}, order = {i + 1}]" for i, f in enumerate(route.filters)],
        "uri": route.uri.raw,
        "order": route.order,
        "metadata": dict(route.metadata),
    }


def definition_view(definition: RouteDefinition) -> dict[str, Any]:
    return {
        "id": definition.id,
        "predicates": [{"name": p.name, "args": dict(p.args)} for p in definition.predicates],
        "filters": [{"name": f.name, "args": dict(f.args)} for f in definition.filters],
        "uri": definition.uri,
        "metadata": dict(definition.metadata),
        "order": definition.order,
    }


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
    breakers = gw.runtimes.breakers.snapshot()
    by_service: dict[str, dict[str, Any]] = {}
    for route in gw.table:
        for gateway_filter in route.filters:
            breaker = getattr(gateway_filter, "breaker_name", None)
            if breaker is not None and route.uri.service is not None and breaker in breakers:
                by_service.setdefault(route.uri.service, {})[breaker] = breakers[breaker]
    for view in out:
        service = view["service"]
        if service in runtimes:
            view.update(runtimes[service].snapshot())
        view["circuitBreakers"] = by_service.get(service, {})
    return _json(out)


async def routes(request: web.Request) -> web.Response:
    return _json([route_view(r) for r in _gateway(request).table])


async def route_get(request: web.Request) -> web.Response:
    route_id = request.match_info["id"]
    route = _gateway(request).table.get(route_id)
    if route is None:
        return _error(404, f"no route with id {route_id!r}", request.path)
    return _json(route_view(route))


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
    return _json([definition_view(d) for d in _gateway(request).routes.definitions()])


async def global_filters(request: web.Request) -> web.Response:
    return _json(dict(GLOBAL_FILTERS))


async def route_filters(request: web.Request) -> web.Response:
    names = sorted(_gateway(request).routes.filters)
    return _json({f"[{name}GatewayFilterFactory]": None for name in names})


async def route_predicates(request: web.Request) -> web.Response:
    names = sorted(_gateway(request).routes.predicates)
    return _json({f"[{name}RoutePredicateFactory]": None for name in names})


async def refresh(request: web.Request) -> web.Response:
    gw = _gateway(request)
    try:
        kv = await gw.read_kv()
    except ConfigError as exc:
        return _error(503, f"route refresh needs Consul: {exc}", request.path)
    error = gw.refresh(kv)
    if error is not None:
        return _error(400, error, request.path)
    return web.Response(status=200)


async def prometheus(request: web.Request) -> web.Response:
    # CONTENT_TYPE_LATEST carries a charset, so it goes in the headers (aiohttp rejects a
    # charset in content_type=).
    body = _gateway(request).metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_management_app(gateway: ManagementView) -> web.Application:
    app = web.Application()
    app[GATEWAY_KEY] = gateway
    app.router.add_get("/actuator/health", health)
    app.router.add_get("/actuator/health/liveness", liveness)
    app.router.add_get("/actuator/health/readiness", readiness)
    app.router.add_get("/actuator/gateway/routes", routes)
    app.router.add_get("/actuator/gateway/routes/{id}", route_get)
    app.router.add_post("/actuator/gateway/routes/{id}", route_post)
    app.router.add_delete("/actuator/gateway/routes/{id}", route_delete)
    app.router.add_get("/actuator/gateway/routedefinitions", route_definitions)
    app.router.add_get("/actuator/gateway/globalfilters", global_filters)
    app.router.add_get("/actuator/gateway/routefilters", route_filters)
    app.router.add_get("/actuator/gateway/routepredicates", route_predicates)
    app.router.add_post("/actuator/gateway/refresh", refresh)
    app.router.add_get("/actuator/gateway/services", services)
    app.router.add_get("/actuator/prometheus", prometheus)
    return app
