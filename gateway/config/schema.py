"""Route, predicate and filter *definitions*: what the configuration says, before anything is
built from it. Frozen, so a loaded configuration can be shared and compared safely."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.config.cors import CorsConfiguration

# A normalised argument value: shortcut and expanded forms both end up as one of these.
ArgValue = Any


@dataclass(frozen=True, slots=True)
class PredicateDefinition:
    name: str
    args: Mapping[str, ArgValue]
    # The arguments as the document wrote them, for the actuator's routedefinitions (SCG shows
    # a shortcut's values as ``_genkey_0``, ``_genkey_1``...); None when made by the gateway.
    written: Mapping[str, ArgValue] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class FilterDefinition:
    name: str
    args: Mapping[str, ArgValue]
    # The arguments as the document wrote them, for the actuator's routedefinitions (SCG shows
    # a shortcut's values as ``_genkey_0``, ``_genkey_1``...); None when made by the gateway.
    written: Mapping[str, ArgValue] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class RouteDefinition:
    id: str
    uri: str
    predicates: tuple[PredicateDefinition, ...] = ()
    filters: tuple[FilterDefinition, ...] = ()
    order: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InstanceDefinition:
    host: str
    port: int
    secure: bool = False
    weight: int = 1
    metadata: Mapping[str, str] = field(default_factory=dict)
    instance_id: str | None = None
    tls_server_name: str | None = None  # tls-server-name: SNI and the certificate's name


# -- what a Spring application.yml sets besides routes (read by gateway.config.spring) ------
@dataclass(frozen=True, slots=True)
class HttpClientSslSettings:
    """``httpclient.ssl.use-insecure-trust-manager`` (None: not written) and
    ``httpclient.ssl.trusted-x509-certificates`` (PEM files of CAs trusted besides the
    system's)."""

    use_insecure_trust_manager: bool | None = None
    trusted_x509_certificates: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HttpClientSettings:
    """``httpclient.connect-timeout`` (SCG: milliseconds) and ``httpclient.response-timeout``
    (a duration), in seconds; None: not set (the gateway's own defaults apply); ``ssl``: the
    upstream TLS keys honoured."""

    connect_timeout: float | None = None
    response_timeout: float | None = None
    ssl: HttpClientSslSettings = field(default_factory=HttpClientSslSettings)


@dataclass(frozen=True, slots=True)
class LocalResponseCacheSettings:
    """``filter.local-response-cache.*``: ``enabled`` turns on a cache for every route (SCG's
    global LocalResponseCache); ``size`` (bytes, None: unbounded) and ``time_to_live``
    (seconds) are the defaults of the per-route filter too."""

    enabled: bool = False
    size: int | None = None
    time_to_live: float = 300.0
    # request.no-cache-strategy: skip-update-cache-entry | update-cache-entry
    no_cache_strategy: str = "skip-update-cache-entry"


@dataclass(frozen=True, slots=True)
class RateLimiterSettings:
    """``filter.request-rate-limiter.*`` (the RequestRateLimiter factory's defaults) and
    ``redis-rate-limiter.*`` (the names of the headers it sends), SCG's defaults."""

    deny_empty_key: bool = True
    empty_key_status: int = 403
    include_headers: bool = True
    remaining_header: str = "X-RateLimit-Remaining"
    replenish_rate_header: str = "X-RateLimit-Replenish-Rate"
    burst_capacity_header: str = "X-RateLimit-Burst-Capacity"
    requested_tokens_header: str = "X-RateLimit-Requested-Tokens"


@dataclass(frozen=True, slots=True)
class FilterSettings:
    """Global filter defaults SCG reads from properties."""

    # set-status.original-status-header-name: SetStatus then sends the upstream's status there
    original_status_header: str | None = None
    local_response_cache: LocalResponseCacheSettings = field(
        default_factory=LocalResponseCacheSettings
    )
    # filter.secure-headers.*: header name (as SCG's property) -> value
    secure_headers: Mapping[str, str] = field(default_factory=dict)
    secure_headers_disabled: tuple[str, ...] = ()  # filter.secure-headers.disable
    secure_headers_enabled: tuple[str, ...] = ()  # filter.secure-headers.enable (opt-in ones)
    # Factories switched off by filter.<name>.enabled / predicate.<name>.enabled: false
    disabled_filters: frozenset[str] = frozenset()
    disabled_predicates: frozenset[str] = frozenset()
    rate_limiter: RateLimiterSettings = field(default_factory=RateLimiterSettings)


@dataclass(frozen=True, slots=True)
class LocatorSettings:
    """``discovery.locator.*``. Expressions are SCG's SpEL, in the forms its documentation
    shows, checked when read (``gateway.config.spel``)."""

    enabled: bool | None = None  # None: not written (GATEWAY_DISCOVERY_LOCATOR_ENABLED decides)
    lower_case_service_id: bool = False
    route_id_prefix: str | None = None  # None: SCG's ReactiveCompositeDiscoveryClient_
    include_expression: str = "true"
    url_expression: str = "'lb://'+serviceId"
    # None: SCG's defaults (Path '/'+serviceId+'/**' and the RewritePath that strips it)
    predicates: tuple[PredicateDefinition, ...] | None = None
    filters: tuple[FilterDefinition, ...] | None = None


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Spring Boot's ``server.port``/``server.address`` and ``management.server.*``: read at
    start-up; an explicitly set ``GATEWAY_*`` variable wins."""

    port: int | None = None
    address: str | None = None
    management_port: int | None = None
    management_address: str | None = None


@dataclass(frozen=True, slots=True)
class SpringSettings:
    http_client: HttpClientSettings = field(default_factory=HttpClientSettings)
    trusted_proxies: str | None = None
    locator: LocatorSettings = field(default_factory=LocatorSettings)
    metrics_enabled: bool | None = None  # None: not written (on)
    filters: FilterSettings = field(default_factory=FilterSettings)
    # globalcors.cors-configurations, in document order (the first matching pattern wins)
    cors: tuple[tuple[str, CorsConfiguration], ...] = ()
    server: ServerSettings = field(default_factory=ServerSettings)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """One route document's definitions. Read from a document, its structure is checked and
    every predicate and filter entry parsed; building the routes checks the rest."""

    routes: tuple[RouteDefinition, ...] = ()
    default_filters: tuple[FilterDefinition, ...] = ()
    services: Mapping[str, tuple[InstanceDefinition, ...]] = field(default_factory=dict)
    source: str = "<embedded>"
    # Per-service defaults for routes to ``lb://<service>`` (same keys as route metadata:
    # load-balancer, hash-on, max-concurrent, max-concurrent-per-instance).
    service_policies: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Everything else the document's spring.cloud.gateway / server / management sections set.
    spring: SpringSettings = field(default_factory=SpringSettings)
