"""Composition root: settings → registries → routes → data plane + management port.

Nothing else wires objects together; every resource created here is closed in ``stop``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily

from discovery.consul.kv import kv_watch
from discovery.consul.registry import Catalog, ConsulRegistry
from discovery.consul.settings import ConsulSettings
from discovery.consul.watch import BlockingWatch, WatchPolicy
from discovery.errors import DiscoveryError
from discovery.instance import ServiceInstance
from discovery.layered import LayeredRegistry
from discovery.registration import SelfRegistration
from discovery.registry import ServiceRegistry
from discovery.state_gauges import state_gauges
from discovery.static import StaticRegistry
from gateway.config.errors import ConfigErrors
from gateway.dispatch import Dispatcher, error_response
from gateway.engine.listener import ServerLimits, ServerState
from gateway.engine.pool import ConnectionPool, PoolSettings
from gateway.engine.replay import ReplayableBody
from gateway.engine.server import HttpServerProtocol
from gateway.engine.sink import SinkPool, SinkSettings
from gateway.errors import ConfigError, ServiceOverloaded
from gateway.exchange import Exchange, Response
from gateway.explain import Explainer
from gateway.extension import BuildContext, WeightGroups
from gateway.filters.api_key import consul_keys
from gateway.forwarded import ForwardedHeaders
from gateway.forwarder import Forwarder
from gateway.inflight import InflightLimit
from gateway.management.actuator import build_management_app
from gateway.management.view import KvRead
from gateway.membership import self_registration
from gateway.mirror.sender import MirrorLimits, Mirrors
from gateway.observability import live
from gateway.observability.access_log import AccessLog
from gateway.observability.live import LiveCounters, LiveStats, in_flight
from gateway.observability.metrics import Metrics, multiprocess_dir
from gateway.observability.observer import RequestObserver
from gateway.observability.tracing import Tracing, TracingSettings
from gateway.plugins import Factories
from gateway.request_id import request_id_factory
from gateway.routing.manager import RouteManager, RouteSnapshot, instances_of
from gateway.routing.table import RouteTable
from gateway.security.api_keys import ApiKeySources, WithoutConsul
from gateway.security.bcrypt_pool import BcryptPool
from gateway.security.client_address import ClientAddresses
from gateway.security.client_cert import ClientCertificates
from gateway.security.consul_keys import ConsulKeySets
from gateway.security.jwks import JwksCaches, JwksPolicy
from gateway.security.management import check_management_exposure
from gateway.security.proxies import trusted_proxies
from gateway.security.tls_client import UpstreamTlsOptions, client_context
from gateway.security.tls_server import ServerTls, server_tls_files
from gateway.settings import Settings
from gateway.sidecar import (
    FIRST_LOOKUP_WAIT,
    OutboundListener,
    inbound_routes,
    outbound_table,
    sidecar_settings,
)
from gateway.stack import RouteStack
from resilience.ratelimit.base import RateLimiterFactory
from resilience.ratelimit.local import LocalRateLimiters
from resilience.ratelimit.redis_backend import RedisRateLimiters
from resilience.runtime import RUNTIME_FIELDS, RuntimeSettings, ServiceRuntimes

log = logging.getLogger("meshgate")

# How often each worker moves its request counters into the Prometheus collectors.
METRICS_FLUSH = 1.0
# The longest shutdown waits for queued spans to reach the collector.
TRACING_FLUSH = 5.0


class Gateway:
    """One worker's gateway: the proxy listener, the management listener and what they share."""

    def __init__(
        self,
        settings: Settings,
        factories: Factories,
        *,
        worker: int = 0,
        rng: random.Random | None = None,
        on_refresh: Callable[[], None] | None = None,
    ) -> None:
        """``factories``: the predicate and filter factories routes may name (built-ins and
        plugins, ``gateway.plugins.factories``). ``on_refresh``: called after a reload this
        worker was asked for (the supervisor then reloads its siblings)."""
        self.settings = settings
        self.worker = worker
        self._rng = rng or random.Random()
        # GATEWAY_MODE=sidecar: the proxy port fronts one local app, and a loopback listener
        # routes the app's calls by service name (gateway/sidecar.py). Checked before binding.
        self.sidecar = sidecar_settings(settings)
        # A sidecar's proxy port belongs to its app: no tag or locator routes take from it.
        catalog_routes = self.sidecar is None
        # Route writes on a network-reachable management port need the token: refused here,
        # before anything binds (the process exits 2).
        check_management_exposure(
            settings.management_host,
            writes=settings.management_write,
            token=settings.management_token,
        )
        # GATEWAY_TLS_*: the proxy port's HTTPS (None: plain HTTP), its files checked here,
        # before anything binds; SIGHUP reloads them (reload_tls).
        tls_files = server_tls_files(
            settings.tls_cert_file,
            settings.tls_key_file,
            settings.tls_client_ca_file,
            settings.tls_client_auth,
        )
        self.tls = ServerTls(tls_files) if tls_files is not None else None
        self.static = StaticRegistry()
        self.consul: ConsulRegistry | None = None
        self.registry: ServiceRegistry = self.static
        if settings.discovery_mode == "consul":
            try:
                consul_settings = ConsulSettings.from_env(
                    datacenter=settings.consul_datacenter,
                    tag=settings.consul_tag,
                    accept_warning=settings.consul_accept_warning,
                    wait=settings.consul_wait,
                )
            except DiscoveryError as exc:
                raise ConfigError(str(exc), "environment") from exc
            self.consul = ConsulRegistry(
                consul_settings,
                watch_catalog=catalog_routes
                and (settings.discovery_locator_enabled or settings.tag_routes),
                on_catalog=self._catalog_changed,
                policy=WatchPolicy(wait=settings.consul_wait),
                rng=self._rng,
            )
            self.registry = LayeredRegistry(self.static, self.consul)
        self.kv_watch: BlockingWatch[bytes | None] | None = None
        self.kv_applied = False
        # ApiKey's consul-key sets, each watched while a route uses it (Consul discovery only),
        # and the threads BasicAuth's bcrypt checks run on: shared by every route and reload.
        self.api_key_sets = (
            ConsulKeySets(policy=WatchPolicy(wait=settings.consul_wait), rng=self._rng)
            if self.consul is not None
            else None
        )
        self.bcrypt = BcryptPool()
        # JwtAuth's JWKS caches: one per URI for every route and reload, fetched with aiohttp.
        self.jwks = JwksCaches(policy=JwksPolicy(refetch_interval=settings.jwks_refetch_interval))
        self.registration: SelfRegistration | None = None
        # One TLS client context for every upstream connection (routes, retargeted URIs,
        # mirrors): built here, so a CA or client certificate that cannot be loaded stops
        # the start.
        upstream_tls = client_context(
            UpstreamTlsOptions(
                verify=settings.upstream_tls_verify,
                ca_file=settings.upstream_ca_file,
                trusted_certificates=settings.upstream_trusted_certificates,
                client_cert_file=settings.upstream_client_cert_file,
                client_key_file=settings.upstream_client_key_file,
            )
        )
        self.pool = ConnectionPool(
            PoolSettings(
                connect_timeout=settings.connect_timeout,
                idle_timeout=settings.upstream_idle_timeout,
            ),
            upstream_tls,
        )
        try:
            tracing_settings = TracingSettings.from_env(os.environ, settings.service_name)
        except ValueError as exc:
            raise ConfigError(str(exc), "environment") from exc
        self.tracing = Tracing(
            tracing_settings,
            rng=self._rng,
            log_level=settings.log_level,
            log_format=settings.log_format,
        )
        # The dashboard's numbers: this worker's counters, fed at each metrics flush, and
        # (on the management worker) the rings over every worker's.
        self.live_counters = LiveCounters() if settings.dashboard else None
        self.live = LiveStats()
        self.metrics = Metrics(state=self._state_metrics, live=self.live_counters)
        # Small batches: the writer thread formats a batch holding the GIL, and a long hold
        # shows up in the request tail (1,024 lines held it ~1.7 ms).
        self.access_log = AccessLog(enabled=settings.access_log, batch_size=128)
        counting = self.metrics if settings.metrics else None
        self.observer = RequestObserver(counting, self.access_log, self.tracing)
        self.runtimes = ServiceRuntimes(
            # The same fields a service's MeshClient.from_env reads from GATEWAY_*.
            RuntimeSettings.of(
                {name: getattr(settings, name) for name in RUNTIME_FIELDS}, settings.zone
            ),
            rng=self._rng,
            on_breaker_change=_log_breaker_change,
            events=counting,
        )
        # GATEWAY_TRUSTED_PROXIES: whose X-Forwarded-* are kept for the upstream, and through
        # whom the one client address is resolved (None: the socket peer is the client).
        try:
            proxies = trusted_proxies(settings.trusted_proxies)
        except ValueError as exc:
            raise ConfigError(str(exc), "GATEWAY_TRUSTED_PROXIES") from exc
        forwarded = ForwardedHeaders(proxies.trusts if proxies is not None else None)
        forwarder = Forwarder(
            self.pool,
            forwarded,
            response_timeout=settings.response_timeout,
            observer=self.observer,
            trust_inbound_lane=settings.trust_inbound_lane
            if self.sidecar is None
            else self.sidecar.inbound_lane,
        )
        # Mirror filters' copies: on the same pool, each with the head its primary got.
        self.mirrors = Mirrors(
            self.pool,
            forwarder.head,
            self.registry.instances,
            MirrorLimits(
                max_body=settings.mirror_max_body,
                max_inflight=settings.mirror_max_inflight,
                timeout=settings.mirror_timeout,
            ),
            rng=self._rng,
            events=self.metrics.mirrors if settings.metrics else None,
            sink=SinkPool(SinkSettings(idle_timeout=settings.upstream_idle_timeout)),
        )
        # RequestRateLimiter's buckets: in one Redis for every process using it, else in each
        # worker (so with GATEWAY_WORKERS > 1 a local limit is per worker).
        limit_events = self.metrics.rate_limits if settings.metrics else None
        self.rate_limiters: RateLimiterFactory = (
            RedisRateLimiters(
                settings.redis_url,
                fail_open=not settings.rate_limit_fail_closed,
                events=limit_events,
            )
            if settings.redis_url is not None
            else LocalRateLimiters(events=limit_events)
        )
        client_addresses = ClientAddresses(proxies) if proxies is not None else None
        self.dispatcher = Dispatcher(RouteTable(()), client_addresses)
        # The explain API: the live table, the forwarder's own head, the client address and
        # lane rules the proxy port applies.
        self.explainer = Explainer(
            lambda: self.dispatcher.table,
            forwarder.head,
            client_address=client_addresses,
            trust_inbound_lane=settings.trust_inbound_lane
            if self.sidecar is None
            else self.sidecar.inbound_lane,
            allow_encoded_slash=settings.allow_encoded_slash,
            scheme="http" if self.tls is None else "https",
            server=lambda: (settings.host, self.port),
        )
        self.stack = RouteStack(
            registry=self.registry,
            forwarder=forwarder,
            runtimes=self.runtimes,
            forward=self.dispatcher.forward,
            rng=self._rng,
            local_zone=settings.zone,
        )
        self.routes = RouteManager(
            factories.predicates,
            factories.filters,
            self.stack.table,
            config_path=settings.config,
            locator_enabled=catalog_routes and settings.discovery_locator_enabled,
            tag_routes_enabled=catalog_routes and self.consul is not None and settings.tag_routes,
            context=self._build_context,
            on_change=self._routes_changed,
            instance_of=self._first_instance,
            synthesized=inbound_routes(self.sidecar) if self.sidecar is not None else (),
        )
        # GATEWAY_MAX_INFLIGHT: the valve sits in front of routing, and only when set.
        valve = None
        if settings.max_inflight > 0:
            valve = InflightLimit(
                settings.max_inflight,
                self.dispatcher,
                self.observer,
                _overloaded,
                on_reject=limit_events.inflight_rejected if limit_events is not None else None,
            )
        limits = ServerLimits(
            max_head_bytes=settings.max_header_size,
            header_timeout=settings.header_timeout,
            keepalive_timeout=settings.keepalive_timeout,
            allow_encoded_slash=settings.allow_encoded_slash,
        )
        self.state = ServerState(
            valve or self.dispatcher,
            error_response,
            limits,
            request_id_factory(),
            scheme="http" if self.tls is None else "https",
            observer=valve or self.observer,
            # mTLS: the verified client certificate, read once per connection, goes upstream
            # as X-Forwarded-Client-Cert.
            identify_client=ClientCertificates()
            if tls_files is not None and tls_files.asks_client_cert
            else None,
        )
        self.outbound: OutboundListener | None = None
        if self.sidecar is not None:
            # The app's own calls: the same pool, runtimes and registry as the proxy port, a
            # stack of their own whose forwarder takes the lane from the app's baggage.
            outbound_stack = RouteStack(
                registry=self.registry,
                forwarder=Forwarder(
                    self.pool,
                    forwarded,
                    response_timeout=settings.response_timeout,
                    observer=self.observer,
                    trust_inbound_lane=True,
                ),
                runtimes=self.runtimes,
                forward=self.dispatcher.forward,
                rng=self._rng,
                local_zone=settings.zone,
            )
            self.outbound = OutboundListener(
                outbound_table(
                    outbound_stack.table,
                    self._build_context,
                    self.registry,
                    first_wait=FIRST_LOOKUP_WAIT if self.consul is not None else 0.0,
                ),
                limits,
                request_id_factory(),
                self.observer,
                port=self.sidecar.outbound_port,
            )
        self._metrics_timer: asyncio.TimerHandle | None = None
        self.ready = False
        self.shutting_down = False
        self._server: asyncio.Server | None = None
        self._management: web.AppRunner | None = None
        self.port = settings.port
        self.management_port = settings.management_port
        self._on_refresh = on_refresh

    def _build_context(self) -> BuildContext:
        """What factories get for one build of the route table: fresh weight groups and the
        gateway's typed dependencies."""
        return BuildContext(
            rng=self._rng,
            # The groups' own generator: the explain API forecasts the next draw from a copy.
            weights=WeightGroups(random.Random(self._rng.getrandbits(64))),
            runtimes=self.runtimes,
            replay_body=ReplayableBody,
            forward=self.dispatcher.forward,
            mirror=self.mirrors,
            rate_limiters=self.rate_limiters,
            api_keys=self._api_key_sources(),
            bcrypt=self.bcrypt,
            jwks=self.jwks,
        )

    def _api_key_sources(self) -> ApiKeySources:
        return self.api_key_sets if self.api_key_sets is not None else WithoutConsul()

    def _flush_metrics(self, loop: asyncio.AbstractEventLoop) -> None:
        """Every second: counters to the collectors, and outlier state trimmed to the
        instances each service still has (departed ones must not hold ejection slots)."""
        self.metrics.flush()
        for name, runtime in self.runtimes.known().items():
            members = self.registry.known_instances(name)  # a fixed http:// target: none
            runtime.outlier.retain({i.instance_id for i in members})
        self._sample_live()
        self._metrics_timer = loop.call_later(METRICS_FLUSH, self._flush_metrics, loop)

    def _sample_live(self) -> None:
        """The live numbers: with several workers each publishes its counters beside
        prometheus-client's files and the management worker reads them all."""
        if self.live_counters is None:
            return  # GATEWAY_DASHBOARD=false: no live numbers kept
        snapshot = self.live_counters.snapshot(in_flight(self.state.exchanges()))
        pid = os.getpid()
        directory = multiprocess_dir() if self.settings.workers > 1 else None
        if directory is not None:
            try:
                live.publish(directory, pid, snapshot)
            except OSError as exc:
                log.warning("cannot publish live numbers to %s: %s", directory, exc)
        if self._management is not None:
            peers = live.read_peers(directory, pid) if directory is not None else ()
            self.live.sample([(str(pid), snapshot), *peers])

    def _state_metrics(self) -> Iterable[GaugeMetricFamily]:
        return state_gauges(self.runtimes, self.registry)

    def _first_instance(self, service: str) -> ServiceInstance | None:
        """What SCG's locator expressions see of a service: its first instance (None until
        discovery has seen one)."""
        instances = self.registry.known_instances(service)
        return instances[0] if instances else None

    def _routes_changed(self, snapshot: RouteSnapshot) -> None:
        self.dispatcher.table = snapshot.table
        self.rate_limiters.retain(r.id for r in snapshot.table.routes)
        if self.api_key_sets is not None:
            self.api_key_sets.retain(
                {key for r in snapshot.table.routes for key in consul_keys(r.chain_filters)}
            )
        self.metrics.set_routes({r.id: r.uri.raw for r in snapshot.table.routes})
        if self.consul is not None:
            # Watch exactly the services routes send to (those not pinned in the file).
            referenced = {s for r in snapshot.table.routes for s in r.services}
            self.consul.track(s for s in referenced if not self.static.has(s))

    def _catalog_changed(self, catalog: Catalog) -> None:
        try:
            self.routes.set_catalog(self._route_catalog(catalog))
        except ConfigError as exc:
            message = format_config_error(exc)
            self.routes.record_error(message)
            log.error("routes from the Consul catalog rejected, keeping the previous:\n%s", message)

    def _kv_changed(self, data: bytes | None) -> None:
        key = self.settings.consul_routes_key
        try:
            self.routes.load_kv(data, f"consul:{key}")
        except ConfigError as exc:
            message = format_config_error(exc)
            self.routes.record_error(message)
            log.error("route document in Consul KV rejected, keeping the previous:\n%s", message)
            return
        self.kv_applied = True
        self.routes.record_error(None)
        log.info("routes from Consul KV %r applied", key)

    # -- what the management port reads (``management.view.ManagementView``) -----------------
    @property
    def serving(self) -> bool:
        return self.ready

    @property
    def table(self) -> RouteTable:
        return self.dispatcher.table

    def membership(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.kv_watch is not None:
            state = self.kv_watch.state
            details["routesKey"] = {
                "key": self.settings.consul_routes_key,
                "loaded": state.loaded,
                "error": state.last_error,
            }
        if self.registration is not None:
            details["registration"] = {
                "serviceId": self.registration.registration.service_id,
                "registered": self.registration.registered,
                "error": self.registration.last_error,
            }
        if self.api_key_sets is not None and self.api_key_sets.sets():
            # ApiKey's consul-key sets: read yet, how many keys, why a document was refused.
            details["apiKeys"] = {
                key: {
                    "loaded": live.current is not None,
                    "keys": len(live.current) if live.current is not None else 0,
                    "error": live.error,
                }
                for key, live in self.api_key_sets.sets().items()
            }
        return details

    @property
    def discovery_ready(self) -> bool:
        """Readiness waits for the first discovery snapshot and the KV route document."""
        if self.kv_watch is not None and not self.kv_applied:
            return False  # not before a valid document (or the key's absence) was applied
        if self.api_key_sets is not None and not self.api_key_sets.loaded:
            return False  # an ApiKey's consul-key not read yet: its route would answer 503
        return self.registry.ready

    # -- configuration -----------------------------------------------------------------------------
    def load(self) -> None:
        """Load the route file and the static registry it defines. Raises ConfigError."""
        config = self.routes.load_file()
        # SCG's own series: on unless spring.cloud.gateway.metrics.enabled is false.
        self.metrics.metrics_enabled = config.spring.metrics_enabled is not False
        self.static.replace(instances_of(config))
        if self.consul is None:
            self.routes.set_services(list(self.static.services()))
        else:
            self.routes.set_catalog(self._route_catalog(self.consul.catalog()))

    def _route_catalog(self, catalog: Catalog) -> dict[str, tuple[str, ...]]:
        """Services locator and tag routes are made from: the file's and Consul's."""
        merged: dict[str, tuple[str, ...]] = {name: () for name in self.static.services()}
        merged.update(catalog)
        if self.settings.registers:
            # Our own registration: a locator route to ourselves would loop.
            merged.pop(self.settings.service_name, None)
        return merged

    def refresh(
        self,
        kv: KvRead | None = None,
        *,
        notify: bool = True,
        scope: Mapping[str, str] | None = None,
    ) -> str | None:
        """Re-read the route file, and apply the KV route document ``kv`` freshly read from
        Consul when given. On error keep the running config and return the error. With
        ``scope`` (SCG's refresh by metadata) only the matching routes are replaced, in this
        process alone: the siblings are not told (their reload would be a full one)."""
        source = f"consul:{self.settings.consul_routes_key}"
        try:
            if scope:
                data = kv.data if kv is not None else None
                self.routes.refresh_matching(scope, data, source if kv is not None else None)
                return None
            self.load()
            if kv is not None:
                self.routes.load_kv(kv.data, source)
        except ConfigError as exc:
            message = format_config_error(exc)
            self.routes.record_error(message)
            log.error("route reload rejected, keeping the previous routes:\n%s", message)
            return message
        if notify and self._on_refresh is not None:
            self._on_refresh()
        return None

    def reload_tls(self) -> str | None:
        """SIGHUP: re-read the proxy port's certificate, key and client CA. New handshakes use
        them; open connections keep theirs. On error keep the running ones and return it."""
        if self.tls is None:
            return None
        try:
            self.tls.reload()
        except ConfigError as exc:
            log.error("TLS reload rejected, keeping the previous certificate: %s", exc)
            return str(exc)
        log.info("TLS certificate reloaded (sha256 %s)", self.tls.fingerprint)
        return None

    # -- lifecycle ---------------------------------------------------------------------------------
    async def read_kv(self) -> KvRead | None:
        """The KV route document as it is now, or None when there is no KV route source.
        Raises ConfigError when Consul can't be read."""
        key = self.settings.consul_routes_key
        if self.consul is None or key is None or self.consul.client is None:
            return None
        try:
            _, data = await self.consul.client.kv_get(key, 0, 0)
        except DiscoveryError as exc:
            raise ConfigError(str(exc), f"consul:{key}") from exc
        return KvRead(data)

    async def start(self, *, reuse_port: bool = False, management: bool = True) -> None:
        loop = asyncio.get_running_loop()
        self.access_log.start()
        self._metrics_timer = loop.call_later(METRICS_FLUSH, self._flush_metrics, loop)
        await self.registry.start()
        if (
            self.consul is not None
            and self.consul.client is not None
            and self.settings.consul_routes_key
        ):
            self.kv_watch = kv_watch(
                self.consul.client,
                self.settings.consul_routes_key,
                self._kv_changed,
                policy=WatchPolicy(wait=self.settings.consul_wait),
                rng=self._rng,
            )
            self.kv_watch.start()
        key_sets = self.api_key_sets
        if key_sets is not None and self.consul is not None and self.consul.client is not None:
            key_sets.start(self.consul.client)  # ApiKey's consul-key sets, watched from now
        state = self.state
        tls: dict[str, Any] = {}
        if self.tls is not None:
            # A client that connects and never finishes its handshake is not a connection
            # the header timeout sees yet: the handshake gets the same bound.
            tls = {"ssl": self.tls.context, "ssl_handshake_timeout": self.settings.header_timeout}
        self._server = await loop.create_server(
            lambda: HttpServerProtocol(state),
            self.settings.host,
            self.settings.port,
            reuse_port=reuse_port or None,
            backlog=2048,
            **tls,
        )
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        if self.outbound is not None:
            await self.outbound.start(reuse_port=reuse_port)
        if management:
            app = build_management_app(self)
            app.on_response_prepare.append(_no_server_version)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(
                runner,
                self.settings.management_host,
                self.settings.management_port,
                reuse_port=reuse_port or None,
            )
            await site.start()
            self._management = runner
            server = getattr(site, "_server", None)
            if server is not None and server.sockets:
                self.management_port = server.sockets[0].getsockname()[1]
        self.ready = True
        if (
            self.consul is not None
            and self.consul.client is not None
            and management
            and self.settings.registers
        ):
            # One registration per gateway (worker 0 owns the management port it checks).
            self.registration = SelfRegistration(
                self.consul.client,
                self_registration(
                    self.settings,
                    self.consul,
                    self.port,
                    self.management_port,
                    app_health=self.sidecar.app_health if self.sidecar is not None else None,
                    secure=self.tls is not None,
                ),
                rng=self._rng,
            )
            self.registration.start()
        log.info(
            "meshgate worker %d listening on %s:%d (management %s:%d), %d routes",
            self.worker,
            self.settings.host,
            self.port,
            self.settings.management_host,
            self.management_port,
            len(self.dispatcher.table),
        )
        if self.tls is not None:
            log.info(
                "HTTPS on the proxy port: certificate sha256 %s, client certificates %s",
                self.tls.fingerprint,
                self.tls.files.client_auth,
            )

    async def stop(self) -> None:
        """Graceful: readiness DOWN, stop accepting, let in-flight requests finish (bounded by
        GATEWAY_SHUTDOWN_TIMEOUT), then close pools and the management port."""
        if self.shutting_down:
            return
        self.shutting_down = True
        self.ready = False
        if self.consul is not None and self.settings.registers:
            # Leave the catalog first, and keep serving while callers' watches catch up (every
            # worker waits, so none closes its listener while callers may still pick us).
            if self.registration is not None:
                await self.registration.deregister()
            if self.settings.deregister_grace > 0:
                await asyncio.sleep(self.settings.deregister_grace)
        if self.kv_watch is not None:
            await self.kv_watch.stop()
        if self.api_key_sets is not None:
            await self.api_key_sets.stop()
        if self._server is not None:
            self._server.close()
        self.state.drain()
        if self.outbound is not None:
            self.outbound.stop_accepting()
        drained = await self.state.wait_closed(self.settings.shutdown_timeout)
        if self.outbound is not None:
            # The app's calls in flight finish too (they drained alongside, same bound).
            drained = await self.outbound.wait_closed(self.settings.shutdown_timeout) and drained
        if not drained:
            log.warning("shutdown timeout reached; aborted the remaining connections")
        self.state.close()
        await self.mirrors.close()  # copies still in flight are cancelled, not awaited
        await self.rate_limiters.close()
        self.bcrypt.close()
        await self.jwks.close()
        self.pool.close()
        if self._metrics_timer is not None:
            self._metrics_timer.cancel()
        self.metrics.flush()
        await self.registry.stop()
        # Both block on their writer threads: off the loop, and bounded.
        await asyncio.to_thread(self.access_log.close)
        try:
            # The SDK's flush exports the whole queue, however slow the collector: bounded here.
            # The tracer's own bound stops its exporter inside ours (a second for the kill).
            await asyncio.wait_for(
                asyncio.to_thread(self.tracing.shutdown, TRACING_FLUSH), TRACING_FLUSH + 1.0
            )
        except TimeoutError:
            log.warning("gave up flushing spans after %gs", TRACING_FLUSH)
        if self._management is not None:
            await self._management.cleanup()
        log.info("meshgate worker %d stopped", self.worker)


async def _no_server_version(request: web.Request, response: web.StreamResponse) -> None:
    # aiohttp would say "Server: Python/3.x aiohttp/3.y": versions to look up exploits for.
    response.headers["Server"] = "meshgate"


def _overloaded(exchange: Exchange) -> Response:
    return error_response(exchange, ServiceOverloaded("too many requests in flight"))


def _log_breaker_change(name: str, old: str, new: str) -> None:
    level = logging.WARNING if new == "open" else logging.INFO
    log.log(level, "circuit breaker %r: %s -> %s", name, old, new)


def format_config_error(exc: ConfigError) -> str:
    if isinstance(exc, ConfigErrors):
        return "\n".join(str(e) for e in exc)
    return str(exc)
