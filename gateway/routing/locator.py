"""SCG's discovery locator: one route per discovered service, as
``spring.cloud.gateway.server.webflux.discovery.locator.*`` describes it.

For each service, ``include-expression`` decides whether it gets a route; the route's id is
``route-id-prefix`` (SCG's default: ``ReactiveCompositeDiscoveryClient_``) + the service id,
its uri ``url-expression``; its predicates and filters are the configured ones (default: a
``Path`` of ``'/'+serviceId+'/**'`` and the ``RewritePath`` that strips it) with every
argument evaluated as an expression. As in SCG, the id and uri see the service id as
registered, while the predicates and filters see it lower-cased when
``lower-case-service-id`` is on (that is what the switch is for: lower-case URL paths).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from discovery.instance import ServiceInstance
from gateway.config.schema import (
    FilterDefinition,
    LocatorSettings,
    PredicateDefinition,
    RouteDefinition,
)
from gateway.config.spel import Scope, compile_expression

LOCATOR_PREFIX = "ReactiveCompositeDiscoveryClient_"

DEFAULT_PREDICATES = (PredicateDefinition("Path", {"patterns": ["'/'+serviceId+'/**'"]}),)
DEFAULT_FILTERS = (
    FilterDefinition(
        "RewritePath",
        {"regexp": "'/' + serviceId + '/?(?<remaining>.*)'", "replacement": "'/${remaining}'"},
    ),
)


def _evaluate(value: Any, scope: Scope, metadata: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return compile_expression(value).evaluate_text(scope, metadata)
    if isinstance(value, list | tuple):
        return [_evaluate(item, scope, metadata) for item in value]
    if isinstance(value, Mapping):
        return {key: _evaluate(item, scope, metadata) for key, item in value.items()}
    return value


def instance_scope(service: str, instance: ServiceInstance | None) -> Scope:
    """What an expression sees of ``service``: SCG's ``ServiceInstance`` properties, taken
    from its first known instance; before one is known, only ``serviceId`` (the rest null)."""
    if instance is None:
        return {"serviceId": service}
    scheme = "https" if instance.secure else "http"
    host = f"[{instance.host}]" if ":" in instance.host else instance.host
    return {
        "serviceId": service,
        "host": instance.host,
        "port": instance.port,
        "scheme": scheme,
        "secure": instance.secure,
        "instanceId": instance.instance_id,
        # DefaultServiceInstance.getUri: the port always written
        "uri": f"{scheme}://{host}:{instance.port}",
    }


def locator_routes(
    services: Mapping[str, ServiceInstance | None],
    locator: LocatorSettings,
    taken: frozenset[str] = frozenset(),
) -> list[RouteDefinition]:
    """The locator's route for each of ``services`` (id -> its first known instance, None
    when none is known yet), in id order, skipping ids in ``taken`` (a route the documents
    define wins). Expressions were checked when the settings were read."""
    include = compile_expression(locator.include_expression)
    url = compile_expression(locator.url_expression)
    prefix = LOCATOR_PREFIX if locator.route_id_prefix is None else locator.route_id_prefix
    predicates = DEFAULT_PREDICATES if locator.predicates is None else locator.predicates
    filters = DEFAULT_FILTERS if locator.filters is None else locator.filters
    routes: list[RouteDefinition] = []
    for service in sorted(services):
        instance = services[service]
        metadata: Mapping[str, str] = instance.metadata if instance is not None else {}
        scope = instance_scope(service, instance)
        if not include.evaluate_bool(scope, metadata):
            continue
        route_id = prefix + service
        if route_id in taken:
            continue
        seen = {**scope, "serviceId": service.lower()} if locator.lower_case_service_id else scope
        routes.append(
            RouteDefinition(
                id=route_id,
                uri=url.evaluate_text(scope, metadata),
                predicates=tuple(
                    PredicateDefinition(p.name, _evaluate(dict(p.args), seen, metadata))
                    for p in predicates
                ),
                filters=tuple(
                    FilterDefinition(f.name, _evaluate(dict(f.args), seen, metadata))
                    for f in filters
                ),
            )
        )
    return routes
