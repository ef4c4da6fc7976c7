"""The live route set: file routes, routes written through the actuator, and discovery-locator
routes, built together into one table and swapped in whole.

Any change (file reload, actuator write, new services) rebuilds from definitions; a build that
fails leaves the running table untouched, so bad config never half-applies.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from discovery.instance import ServiceInstance
from gateway.config.schema import (
    FilterDefinition,
    GatewayConfig,
    PredicateDefinition,
    RouteDefinition,
)
from gateway.config.validate import validate_document, validate_file
from gateway.exchange import Handler
from gateway.filters.base import FilterFactory
from gateway.predicates.base import PredicateFactory
from gateway.routing.builder import build_routes
from gateway.routing.context import BuildContext, WeightGroups
from gateway.routing.route import Route
from gateway.routing.table import RouteTable

log = logging.getLogger("meshgate.routes")

LOCATOR_PREFIX = "ReactiveCompositeDiscoveryClient_"


def locator_definition(service: str) -> RouteDefinition:
    """SCG's discovery-locator route for one service."""
    return RouteDefinition(
        id=LOCATOR_PREFIX + service,
        uri=f"lb://{service}",
        predicates=(PredicateDefinition("Path", {"patterns": [f"/{service}/**"]}),),
        filters=(
            FilterDefinition(
                "RewritePath",
                {"regexp": f"/{service}/?(?<remaining>.*)", "replacement": "/${remaining}"},
            ),
        ),
    )


def instances_of(config: GatewayConfig) -> dict[str, list[ServiceInstance]]:
    services: dict[str, list[ServiceInstance]] = {}
    for name, defs in config.services.items():
        services[name] = [
            ServiceInstance(
                service=name,
                instance_id=d.instance_id or f"{name}-{d.host}:{d.port}",
                host=d.host,
                port=d.port,
                secure=d.secure,
                weight=d.weight,
                metadata=dict(d.metadata),
            )
            for d in defs
        ]
    return services


@dataclass(frozen=True, slots=True)
class RouteSnapshot:
    config: GatewayConfig
    table: RouteTable


class RouteManager:
    def __init__(
        self,
        predicates: Mapping[str, PredicateFactory],
        filters: Mapping[str, FilterFactory],
        compile_route: Callable[[Route], Handler],
        *,
        config_path: str | None,
        locator_enabled: bool,
        rng: random.Random | None = None,
        on_change: Callable[[RouteSnapshot], None] | None = None,
    ) -> None:
        self._on_change = on_change
        self._predicates = predicates
        self._filters = filters
        self._compile = compile_route
        self._path = config_path
        self._locator = locator_enabled
        self._rng = rng or random.Random()
        self._file = GatewayConfig(source="<embedded>")
        self._api: dict[str, RouteDefinition] = {}
        self._services: tuple[str, ...] = ()
        self.snapshot = RouteSnapshot(self._file, RouteTable(()))
        self.last_error: str | None = None

    @property
    def predicates(self) -> Mapping[str, PredicateFactory]:
        return self._predicates

    @property
    def filters(self) -> Mapping[str, FilterFactory]:
        return self._filters

    @property
    def file_config(self) -> GatewayConfig:
        return self._file

    @property
    def api_definitions(self) -> Mapping[str, RouteDefinition]:
        return self._api

    def definitions(self) -> list[RouteDefinition]:
        """Every active definition: file routes (overridden by id by actuator routes), actuator
        routes, then one locator route per known service not already routed by id."""
        merged: dict[str, RouteDefinition] = {r.id: r for r in self._file.routes}
        merged.update(self._api)
        out = list(merged.values())
        if self._locator:
            for service in self._services:
                rid = LOCATOR_PREFIX + service
                if rid not in merged:
                    out.append(locator_definition(service))
        return out

    def load_file(self) -> GatewayConfig:
        """Read and build the route file; raise ConfigError(s) without changing anything."""
        if self._path is None:
            config = GatewayConfig(source="<embedded>")
        else:
            config, _ = validate_file(self._path, self._predicates, self._filters, self._context)
        self._rebuild(config, self._api, self._services)
        self._file = config
        self.last_error = None
        return config

    def set_services(self, services: list[str]) -> None:
        services_t = tuple(sorted(services))
        if services_t == self._services:
            return
        if not self._locator:
            self._services = services_t  # only locator routes depend on the service list
            return
        self._rebuild(self._file, self._api, services_t)
        self._services = services_t

    def put_api_route(self, definition: RouteDefinition) -> None:
        api = {**self._api, definition.id: definition}
        self._rebuild(self._file, api, self._services)
        self._api = api

    def delete_api_route(self, route_id: str) -> bool:
        if route_id in self._api:
            api = {k: v for k, v in self._api.items() if k != route_id}
        elif any(r.id == route_id for r in self._file.routes):
            # Deleting a file route hides it until the next reload of the file.
            routes = tuple(r for r in self._file.routes if r.id != route_id)
            file = replace(self._file, routes=routes)
            self._rebuild(file, self._api, self._services)
            self._file = file
            return True
        else:
            return False
        self._rebuild(self._file, api, self._services)
        self._api = api
        return True

    def validate_definition_document(self, data: object, source: str) -> RouteDefinition:
        config, _ = validate_document(
            {"routes": [data]}, source, self._predicates, self._filters, self._context
        )
        return config.routes[0]

    def _context(self) -> BuildContext:
        return BuildContext(rng=self._rng, weights=WeightGroups(self._rng))

    def _rebuild(
        self, file: GatewayConfig, api: Mapping[str, RouteDefinition], services: tuple[str, ...]
    ) -> None:
        saved = (self._file, self._api, self._services)
        self._file, self._api, self._services = file, dict(api), services
        try:
            combined = replace(file, routes=tuple(self.definitions()))
            routes = build_routes(combined, self._predicates, self._filters, self._context)
        finally:
            self._file, self._api, self._services = saved
        compiled = [replace(route, handler=self._compile(route)) for route in routes]
        self.snapshot = RouteSnapshot(file, RouteTable(compiled))
        log.info("route table loaded: %d routes", len(compiled))
        if self._on_change is not None:
            self._on_change(self.snapshot)
