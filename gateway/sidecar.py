"""Sidecar mode (``GATEWAY_MODE=sidecar``, ``meshgate sidecar``): the gateway process in front of
one local app, for services that cannot embed the mesh client.

Two listeners, one engine and one route machinery:

- **inbound**, the proxy port: the route file's routes, then a route the sidecar makes itself
  (``sidecar-app``, lowest precedence, no predicate) that sends everything to
  ``GATEWAY_SIDECAR_APP``. It is built like any file route, so the document's
  ``default-filters`` (RequestRateLimiter, say) apply to it, and a route of the file with the id
  ``sidecar-app`` replaces it. ``GATEWAY_MAX_INFLIGHT``, the server span and the access log are
  the proxy port's as always. The app is registered in Consul under ``GATEWAY_SERVICE_NAME`` at
  this port, with its check going through it (``membership.self_registration``).
- **outbound**, ``127.0.0.1:GATEWAY_OUTBOUND_PORT`` and loopback only: the app's own calls,
  as a proxy gets them (``GET http://billing/x``, the host of which the engine makes the
  request's host) or with ``Host: billing``. A table of one catch-all route sends each request
  to ``lb://<its host>`` (``stack.Retargeted``, which resolves a URI per request) with the
  gateway's balancer, per-service runtime (outlier ejection, bulkhead), a Retry, and a lane
  taken from the app's ``baggage`` (the app is local and trusted). A host no instance answers
  for is a 503 naming it; nothing goes to an address that is not a service (no open proxy).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from discovery.registry import ServiceRegistry
from gateway.config.schema import FilterDefinition, GatewayConfig, RouteDefinition
from gateway.dispatch import Dispatcher, error_response
from gateway.engine.listener import ServerLimits, ServerState
from gateway.engine.server import HttpServerProtocol
from gateway.errors import BadRequest, ConfigError, NoInstancesAvailable
from gateway.exchange import Exchange, Handler, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, WrappingFilter
from gateway.filters.request_uri import ChangeRequestUri, RequestUrl
from gateway.filters.retry import FACTORIES as RETRY_FACTORIES
from gateway.observability.observer import RequestObserver
from gateway.routing.builder import build_routes
from gateway.routing.route import Route
from gateway.routing.table import RouteTable
from gateway.settings import Settings

log = logging.getLogger("meshgate.sidecar")

INBOUND_ROUTE_ID = "sidecar-app"
OUTBOUND_ROUTE_ID = "sidecar-outbound"
# SCG's Ordered.LOWEST_PRECEDENCE: every route of the file is matched before the app's.
LOWEST_PRECEDENCE = 2**31 - 1
# The outbound listener is for the app on this host, never for the network.
OUTBOUND_HOST = "127.0.0.1"
# A service first named by a request is watched from then on; its first snapshot is waited
# for this long (Consul answers a watch's first query at once), so the app's first call to a
# service is not a 503. Only once per name: after that a name without instances fails fast.
FIRST_LOOKUP_WAIT = 2.0
_FIRST_LOOKUP_POLL = 0.02
_WAITED_NAMES = 1024  # the names remembered as waited for (then forgotten all at once)

# The outbound Retry: what the gateway's Retry does with these arguments — idempotent methods
# retried once, on another instance, when the connection failed or broke (the request went
# nowhere, or nothing came back); any other method only when the connect failed (nothing was
# sent). Paid from the retry budget of nothing: the route's service is per request.
_RETRY_ARGS = {
    "retries": "1",
    "methods": ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"],
    "series": [],
    "exceptions": ["java.io.IOException"],
}
# A name the registries can hold (Consul's service names are DNS labels and dots).
_SERVICE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})")


@dataclass(frozen=True, slots=True)
class SidecarSettings:
    """``GATEWAY_SIDECAR_*`` and ``GATEWAY_OUTBOUND_PORT``, checked once at start-up."""

    app: str  # the app's URL: http(s)://host:port
    app_health: str  # the path the registration's check asks for, through the proxy port
    outbound_port: int
    # Whether the proxy port honours a lane in inbound baggage: GATEWAY_TRUST_INBOUND_LANE
    # when set, else on (a sidecar sits inside the mesh; the edge already removed the
    # clients' lanes), so the lane reaches the app and its outbound calls.
    inbound_lane: bool


def sidecar_settings(settings: Settings) -> SidecarSettings | None:
    """The sidecar's settings, None in gateway mode. Raises ``ConfigError`` naming the
    variable that is missing or wrong."""
    if settings.mode != "sidecar":
        return None
    app = settings.sidecar_app
    if app is None:
        raise ConfigError(
            "required in sidecar mode: the local app's URL, e.g. http://127.0.0.1:9000",
            "GATEWAY_SIDECAR_APP",
        )
    parts = urlsplit(app)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or port == -1
        or parts.path not in ("", "/")
        or parts.query
        or parts.username is not None
    ):
        raise ConfigError(
            f"expected http://host:port or https://host:port (no path), got {app!r}",
            "GATEWAY_SIDECAR_APP",
        )
    health = settings.sidecar_app_health
    if not health.startswith("/") or any(c.isspace() for c in health):
        raise ConfigError(
            f"expected a path such as /health, got {health!r}", "GATEWAY_SIDECAR_APP_HEALTH"
        )
    trusted = (
        settings.trust_inbound_lane if "trust_inbound_lane" in settings.model_fields_set else True
    )
    return SidecarSettings(app.rstrip("/"), health, settings.outbound_port, trusted)


def inbound_routes(sidecar: SidecarSettings) -> tuple[RouteDefinition, ...]:
    """The proxy port's route to the app: no predicate (it matches every request no file route
    took), the lowest precedence."""
    return (
        RouteDefinition(
            id=INBOUND_ROUTE_ID,
            uri=sidecar.app,
            order=LOWEST_PRECEDENCE,
            metadata={"sidecar": "inbound"},
        ),
    )


def service_of(exchange: Exchange) -> str | None:
    """The service a request to the outbound port names: its host without the port (the
    absolute-form target's authority, which the engine made the request's host, or Host);
    None when that is no service name (an IP literal, say)."""
    host = exchange.original_host
    if not host:
        return None
    if host.startswith("["):
        return None  # an IPv6 literal
    name = host.rpartition(":")[0] if ":" in host else host
    name = name.rstrip(".")  # "billing." is the fully-qualified spelling of "billing"
    if not _SERVICE_NAME.fullmatch(name) or name.replace(".", "").isdigit():
        return None
    return name


class UnknownService(NoInstancesAvailable):
    """No instance of the service the app asked for: a 503 whose body names the service (the
    app asked; it is on this host, so the name tells it nothing it did not send)."""

    def __init__(self, service: str) -> None:
        super().__init__(f"no instance of service {service!r}")
        self.public_message = f"no instance of service {service!r}"


class ServiceFromHost(ChangeRequestUri):
    """The outbound route's target, per request: ``lb://<host>``, the request's own path."""

    name = "SidecarServiceFromHost"

    def request_url(self, exchange: Exchange) -> RequestUrl | None:
        service = service_of(exchange)
        if service is None:
            return None  # KnownService refused it already
        return RequestUrl("lb://" + service, "lb", service, 0, exchange.request.target)

    def describe(self) -> str:
        return self.name


class KnownService(WrappingFilter):
    """In front of the outbound route: the request must name a service the registry has an
    instance of, else a 400 (no name) or a 503 naming it. A name met for the first time is
    given ``first_wait`` for discovery's first snapshot of it."""

    name = "SidecarKnownService"

    def __init__(self, registry: ServiceRegistry, first_wait: float) -> None:
        self._registry = registry
        self._first_wait = first_wait
        self._waited: set[str] = set()

    def wrap(self, inner: Handler) -> Handler:
        async def known(exchange: Exchange) -> Response:
            service = service_of(exchange)
            if service is None:
                raise BadRequest(
                    "the request names no service: send http://<service>/... through the "
                    "proxy, or Host: <service>"
                )
            if not self._registry.instances(service) and not await self._first_lookup(service):
                raise UnknownService(service)
            return await inner(exchange)

        return known

    async def _first_lookup(self, service: str) -> bool:
        key = service.casefold()
        if self._first_wait <= 0 or key in self._waited:
            return False
        if len(self._waited) >= _WAITED_NAMES:
            self._waited.clear()
        self._waited.add(key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._first_wait
        while loop.time() < deadline:
            await asyncio.sleep(_FIRST_LOOKUP_POLL)
            if self._registry.instances(service):
                return True
        return False

    def describe(self) -> str:
        return self.name


def outbound_table(
    build_table: Callable[[Sequence[Route]], RouteTable],
    context: Callable[[], BuildContext],
    registry: ServiceRegistry,
    *,
    first_wait: float,
) -> RouteTable:
    """The outbound listener's table: one catch-all route, built by the route builder and the
    stack (``build_table``, a ``RouteStack.table`` whose forwarder trusts the app's lane):
    KnownService, then Retry (each attempt re-picks, avoiding the instances tried), then the
    per-request ``lb://`` target."""
    known = KnownService(registry, first_wait)
    target = ServiceFromHost()

    def fixed(made: GatewayFilter) -> FilterFactory:
        return FilterFactory(made.name, (), lambda args, ctx: made)

    factories = {
        **{factory.name: factory for factory in RETRY_FACTORIES},
        known.name: fixed(known),
        target.name: fixed(target),
    }
    definition = RouteDefinition(
        id=OUTBOUND_ROUTE_ID,
        uri="no://op",
        filters=(
            FilterDefinition(known.name, {}),
            FilterDefinition("Retry", _RETRY_ARGS),
            FilterDefinition(target.name, {}),
        ),
        metadata={"sidecar": "outbound"},
    )
    config = GatewayConfig(routes=(definition,), source="sidecar outbound")
    return build_table(build_routes(config, {}, factories, context))


class OutboundListener:
    """The loopback listener the app sends its calls to: the engine, the outbound table, the
    same observer (server span, access log, metrics) as the proxy port."""

    def __init__(
        self,
        table: RouteTable,
        limits: ServerLimits,
        request_id: Callable[[], str],
        observer: RequestObserver,
        *,
        port: int,
    ) -> None:
        self.state = ServerState(
            Dispatcher(table), error_response, limits, request_id, observer=observer
        )
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self, *, reuse_port: bool = False) -> None:
        state = self.state
        self._server = await asyncio.get_running_loop().create_server(
            lambda: HttpServerProtocol(state),
            OUTBOUND_HOST,
            self.port,
            reuse_port=reuse_port or None,
            backlog=1024,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("sidecar outbound listening on %s:%d", OUTBOUND_HOST, self.port)

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()
        self.state.drain()

    async def wait_closed(self, timeout: float) -> bool:
        drained = await self.state.wait_closed(timeout)
        self.state.close()
        return drained
