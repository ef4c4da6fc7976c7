"""The management port: Spring Boot actuator health groups and SCG's gateway actuator API.

Served by aiohttp (not the data plane): it is low-traffic, and aiohttp gives us routing and
JSON for free. Route writes are off unless ``GATEWAY_MANAGEMENT_WRITE=true``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.config.schema import RouteDefinition
from gateway.errors import ConfigError
from gateway.routing.route import Route

if TYPE_CHECKING:
    from gateway.app import Gateway

GATEWAY_KEY = web.AppKey("gateway", object)

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


def _gateway(request: web.Request) -> Gateway:
    return request.app[GATEWAY_KEY]  # type: ignore[return-value]


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
    ready = gw.ready and gw.discovery_ready
    components = {
        "liveness": {"status": "UP"},
        "readiness": {"status": "UP" if ready else "OUT_OF_SERVICE"},
        "routes": {
            "status": "UP" if gw.routes.last_error is None else "DEGRADED",
            "details": {
                "count": len(gw.dispatcher.table),
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
    ready = gw.ready and gw.discovery_ready
    body: dict[str, Any] = {"status": "UP" if ready else "OUT_OF_SERVICE"}
    if gw.consul is not None:
        body["details"] = _discovery_details(gw)
    return _json(body, 200 if ready else 503)


def _discovery_details(gw: Gateway) -> dict[str, Any]:
    details: dict[str, Any] = {"services": list(gw.registry.services())}
    if gw.consul is not None:
        details.update(gw.consul.status())
    if gw.kv_watch is not None:
        state = gw.kv_watch.state
        details["routesKey"] = {
            "key": gw.settings.consul_routes_key,
            "loaded": state.loaded,
            "error": state.last_error,
        }
    if gw.registration is not None:
        details["registration"] = {
            "serviceId": gw.registration.registration.service_id,
            "registered": gw.registration.registered,
            "error": gw.registration.last_error,
        }
    return details


async def services(request: web.Request) -> web.Response:
    """Each known service with its instances, health and snapshot age (ours, not SCG's)."""
    gw = _gateway(request)
    out: list[dict[str, Any]] = []
    consul_views = {v["service"]: v for v in gw.consul.details()} if gw.consul else {}
    for name in gw.registry.services():
        if gw.static.has(name):
            out.append(
                {
                    "service": name,
                    "source": "static",
                    "loaded": True,
                    "snapshotAgeSeconds": None,
                    "error": None,
                    "healthy": len(gw.static.instances(name)),
                    "instances": [
                        {
                            "instanceId": i.instance_id,
                            "host": i.host,
                            "port": i.port,
                            "secure": i.secure,
                            "health": "passing",
                            "routable": True,
                            "weight": i.weight,
                            "tags": list(i.tags),
                            "metadata": dict(i.metadata),
                        }
                        for i in gw.static.instances(name)
                    ],
                }
            )
        elif name in consul_views:
            out.append(consul_views.pop(name))
        else:
            out.append({"service": name, "source": "consul", "watched": False})
    out.extend(consul_views.values())  # watched on demand, not (yet) in the catalog
    runtimes = gw.runtimes.known()
    breakers = gw.runtimes.breakers.snapshot()
    by_service: dict[str, dict[str, Any]] = {}
    for route in gw.dispatcher.table:
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
    return _json([route_view(r) for r in _gateway(request).dispatcher.table])


async def route_get(request: web.Request) -> web.Response:
    route_id = request.match_info["id"]
    route = _gateway(request).dispatcher.table.get(route_id)
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


def build_management_app(gateway: Gateway) -> web.Application:
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
