"""The live route set, built together into one table and swapped in whole. Sources, by
precedence (a later one replaces an earlier route with the same id):

  file routes  <  Consul KV routes  <  routes written through the actuator

then routes from service tags (``urlprefix-``) and discovery-locator routes for whatever
those left unrouted.

Any change (file reload, actuator write, new services) rebuilds from definitions; a build that
fails leaves the running table untouched, so bad config never half-applies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from discovery.instance import ServiceInstance
from gateway.config.schema import (
    GatewayConfig,
    RouteDefinition,
)
from gateway.config.text import read_text
from gateway.extension import BuildContext, FilterFactory, PredicateFactory
from gateway.routing.builder import build_routes
from gateway.routing.locator import locator_routes
from gateway.routing.route import Route
from gateway.routing.table import RouteTable
from gateway.routing.tag_routes import tag_routes
from gateway.routing.validate import validate_document, validate_file

log = logging.getLogger("meshgate.routes")


def _warn_start_up_changes(before: GatewayConfig, after: GatewayConfig) -> None:
    """Spring settings read once at start-up (they size sockets, clients and watches) don't
    change with a reload: say so rather than seem to apply them."""
    old, new = before.spring, after.spring
    changed = [
        name
        for name, a, b in (
            ("server.* / management.server.*", old.server, new.server),
            ("httpclient.*", old.http_client, new.http_client),
            ("trusted-proxies", old.trusted_proxies, new.trusted_proxies),
            ("discovery.locator.enabled", old.locator.enabled, new.locator.enabled),
        )
        if a != b
    ]
    if changed:
        log.warning(
            "%s: %s changed; these are read at start-up and take effect on restart",
            after.source,
            ", ".join(changed),
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
                tls_server_name=d.tls_server_name,
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
        build_table: Callable[[Sequence[Route]], RouteTable],
        *,
        config_path: str | None,
        locator_enabled: bool,
        tag_routes_enabled: bool = False,
        context: Callable[[], BuildContext] = BuildContext,
        on_change: Callable[[RouteSnapshot], None] | None = None,
        instance_of: Callable[[str], ServiceInstance | None] = lambda service: None,
        synthesized: Sequence[RouteDefinition] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``build_table`` gives built routes their chains (the stack builder); ``context``
        makes the BuildContext of each build (fresh weight groups, the typed dependencies
        factories may use); ``instance_of`` gives a service's first known instance, which the
        discovery locator's expressions read (its properties and metadata); ``synthesized``:
        routes the gateway makes itself (sidecar mode's route to its app), each kept unless a
        route of the documents or the actuator has its id, built with the documents' default
        filters."""
        self._on_change = on_change
        self._predicates = predicates
        self._filters = filters
        self._build_table = build_table
        self._path = config_path
        self._locator = locator_enabled
        self._tags = tag_routes_enabled
        self._context = context
        self._instance_of = instance_of
        self._synthesized = tuple(synthesized)
        self._file = GatewayConfig(source="<embedded>")
        self._kv: GatewayConfig | None = None
        self._api: dict[str, RouteDefinition] = {}
        self._catalog: dict[str, tuple[str, ...]] = {}
        self.tag_warnings: tuple[str, ...] = ()
        self.snapshot = RouteSnapshot(self._file, RouteTable(()))
        self.last_error: str | None = None
        self._clock = clock
        # Wall-clock times of the last table swapped in and of the last refused change.
        self.built_at: float | None = None
        self.failed_at: float | None = None

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

    @property
    def kv_config(self) -> GatewayConfig | None:
        return self._kv

    def definitions(self) -> list[RouteDefinition]:
        """Every active definition: file routes overridden by id by KV routes, and both by
        actuator routes; then tag routes and one locator route per known service, where no
        route has that id already."""
        merged: dict[str, RouteDefinition] = {r.id: r for r in self._file.routes}
        if self._kv is not None:
            merged.update({r.id: r for r in self._kv.routes})
        merged.update(self._api)
        out = list(merged.values())
        out.extend(d for d in self._synthesized if d.id not in merged)
        if self._tags:
            found = tag_routes(self._catalog)
            out.extend(d for d in found.definitions if d.id not in merged)
        if self._locator:
            taken = frozenset(merged)
            services = {name: self._instance_of(name) for name in self._catalog}
            out.extend(locator_routes(services, self._file.spring.locator, taken))
        return out

    def referenced_services(self) -> set[str]:
        """``lb://`` services the live table routes to (what discovery must watch)."""
        return {s for r in self.snapshot.table.routes for s in r.services}

    def load_file(self) -> GatewayConfig:
        """Read and build the route file; raise ConfigError(s) without changing anything."""
        if self._path is None:
            config = GatewayConfig(source="<embedded>")
        else:
            config, _ = validate_file(self._path, self._predicates, self._filters, self._context)
        self._rebuild(config, self._kv, self._api, self._catalog)
        if self._file.source == config.source:  # a reload, not the first load
            _warn_start_up_changes(self._file, config)
        self._file = config
        self.last_error = None
        return config

    def load_kv(self, data: bytes | None, source: str) -> GatewayConfig | None:
        """Apply the route document stored in Consul KV (None: the key is absent, so no KV
        routes). Raises ConfigError(s) and changes nothing when the document is invalid."""
        config = self._read_kv(data, source)
        self._rebuild(self._file, config, self._api, self._catalog)
        self._kv = config
        return config

    def _read_kv(self, data: bytes | None, source: str) -> GatewayConfig | None:
        if data is None or not data.strip():
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            from gateway.errors import ConfigError

            raise ConfigError(f"not UTF-8 text: {exc}", source) from exc
        config, _ = validate_document(
            read_text(text, source), source, self._predicates, self._filters, self._context
        )
        return config

    def refresh_matching(
        self,
        scope: Mapping[str, str],
        kv_data: bytes | None = None,
        kv_source: str | None = None,
    ) -> None:
        """SCG's refresh by metadata (``RefreshRoutesEvent`` with metadata): the file (and,
        with ``kv_source``, the KV document ``kv_data``) is read again, but only its routes
        whose metadata matches ``scope`` are taken from it; every other route stays as it runs.
        As in SCG, a route that matched and no longer does is dropped until a full refresh,
        and the refreshed routes come first among routes of equal ``order``. Everything else
        the documents set (default filters, services) is kept: a scoped refresh touches routes
        only. Raises ConfigError(s) and changes nothing when a document is invalid."""
        if self._path is None:
            fresh_file: tuple[RouteDefinition, ...] = ()
        else:
            read, _ = validate_file(self._path, self._predicates, self._filters, self._context)
            fresh_file = read.routes
        file = replace(self._file, routes=_scoped(self._file.routes, fresh_file, scope))
        kv = self._kv
        if kv_source is not None:
            fresh_kv = self._read_kv(kv_data, kv_source)
            fresh_routes = fresh_kv.routes if fresh_kv is not None else ()
            base = kv if kv is not None else GatewayConfig(source=kv_source)
            kv = replace(base, routes=_scoped(base.routes, fresh_routes, scope))
            if self._kv is None and not kv.routes:
                kv = None
        self._rebuild(file, kv, self._api, self._catalog)
        self._file, self._kv = file, kv
        self.last_error = None

    def record_error(self, message: str | None) -> None:
        """The last refused change (None: the last change was taken), and when."""
        self.last_error = message
        if message is not None:
            self.failed_at = self._clock()

    def set_services(self, services: list[str]) -> None:
        """The known services, without tags (the static registry)."""
        self.set_catalog({name: self._catalog.get(name, ()) for name in services})

    def set_catalog(self, catalog: Mapping[str, tuple[str, ...]]) -> None:
        """Known services and their tags: the input of locator and tag routes."""
        catalog_d = {name: tuple(tags) for name, tags in catalog.items()}
        if catalog_d == self._catalog:
            return
        if not self._locator and not self._tags:
            self._catalog = catalog_d  # no route depends on the catalog
            return
        self._rebuild(self._file, self._kv, self._api, catalog_d)
        self._catalog = catalog_d

    def put_api_route(self, definition: RouteDefinition) -> None:
        api = {**self._api, definition.id: definition}
        self._rebuild(self._file, self._kv, api, self._catalog)
        self._api = api

    def delete_api_route(self, route_id: str) -> bool:
        if route_id in self._api:
            api = {k: v for k, v in self._api.items() if k != route_id}
        elif any(r.id == route_id for r in self._file.routes):
            # Deleting a file route hides it until the next reload of the file.
            routes = tuple(r for r in self._file.routes if r.id != route_id)
            file = replace(self._file, routes=routes)
            self._rebuild(file, self._kv, self._api, self._catalog)
            self._file = file
            return True
        else:
            return False
        self._rebuild(self._file, self._kv, api, self._catalog)
        self._api = api
        return True

    def validate_definition_document(self, data: object, source: str) -> RouteDefinition:
        config, _ = validate_document(
            {"routes": [data]}, source, self._predicates, self._filters, self._context
        )
        return config.routes[0]

    def _rebuild(
        self,
        file: GatewayConfig,
        kv: GatewayConfig | None,
        api: Mapping[str, RouteDefinition],
        catalog: dict[str, tuple[str, ...]],
    ) -> None:
        saved = (self._file, self._kv, self._api, self._catalog)
        self._file, self._kv, self._api, self._catalog = file, kv, dict(api), catalog
        try:
            definitions = tuple(self.definitions())
            default_filters = file.default_filters
            if kv is not None and kv.default_filters:
                default_filters = kv.default_filters  # the KV document's, when it sets them
            # Per-service policy defaults (``services:``): the KV document's win by name.
            policies = {**file.service_policies, **(kv.service_policies if kv else {})}
            combined = replace(
                file,
                routes=definitions,
                default_filters=default_filters,
                service_policies=policies,
            )
            routes = build_routes(combined, self._predicates, self._filters, self._context)
            if self._tags:
                warnings = tag_routes(catalog).warnings
                if warnings != self.tag_warnings:
                    for warning in warnings:
                        log.warning("tag route: %s", warning)
                    self.tag_warnings = warnings
        finally:
            self._file, self._kv, self._api, self._catalog = saved
        table = self._build_table(routes)
        self.snapshot = RouteSnapshot(file, table)
        self.built_at = self._clock()
        log.info("route table loaded: %d routes", len(table))
        if self._on_change is not None:
            self._on_change(self.snapshot)


def metadata_matches(metadata: Mapping[str, object], scope: Mapping[str, str]) -> bool:
    """SCG's ``RouteLocator.matchMetadata``: every scope key present with an equal value. SCG
    compares with Java's ``equals`` against the request's string, so a number or a boolean in
    the metadata (``version: 2``) never matches; only string values do."""
    return all(
        isinstance(found := metadata.get(key), str) and found == value
        for key, value in scope.items()
    )


def _scoped(
    running: Sequence[RouteDefinition],
    fresh: Sequence[RouteDefinition],
    scope: Mapping[str, str],
) -> tuple[RouteDefinition, ...]:
    """SCG's scoped cache update: the fresh routes that match, then the running ones that
    don't (a fresh route replaces a running one of the same id)."""
    refreshed = [d for d in fresh if metadata_matches(d.metadata, scope)]
    ids = {d.id for d in refreshed}
    kept = [d for d in running if d.id not in ids and not metadata_matches(d.metadata, scope)]
    return (*refreshed, *kept)
