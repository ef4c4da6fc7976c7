"""What a Spring ``application.yml`` sets besides routes, read into ``SpringSettings``.

Every property SCG 5.0.4 binds under ``spring.cloud.gateway.server.webflux`` (and under the
older ``spring.cloud.gateway`` prefix, which SCG still reads) is in ``PROPERTIES`` with what
meshgate does with it:

- **honoured**: read, checked and put in force (``httpclient.connect-timeout``,
  ``trusted-proxies``, ``discovery.locator.*``, ``globalcors``, ``filter.*.enabled`` ...);
- **default only**: SCG's default is what meshgate does; another value is refused, with why
  (``x-forwarded.enabled: false``, ``fail-on-route-definition-error: false`` ...);
- **refused**: a setting meshgate has no such thing for, with the reason and, where there is
  one, the ``GATEWAY_*`` variable that does the job (``httpclient.pool.*``, ``redis-*`` ...).

A key that is none of these is a located error with a did-you-mean (SCG ignores typos). Names
bind as Spring's relaxed binding binds them: ``connect-timeout``, ``connectTimeout`` and
``connect_timeout`` are one property, and one key may spell several levels with dots.
Outside ``spring.cloud.gateway`` only Spring Boot's ``server.port``/``server.address`` and
``management.server.port``/``address`` are read (and their ``ssl`` refused: TLS set there
and silently not served would be worse than an error); every other key is Spring's, ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

from gateway.config.args import parse_bool, parse_data_size
from gateway.config.cors import CorsConfiguration, check_cors_pattern, parse_cors
from gateway.config.errors import RANK_DOCUMENT, ErrorCollector
from gateway.config.schema import (
    FilterDefinition,
    FilterSettings,
    HttpClientSettings,
    HttpClientSslSettings,
    LocalResponseCacheSettings,
    LocatorSettings,
    PredicateDefinition,
    RateLimiterSettings,
    ServerSettings,
    SpringSettings,
)
from gateway.config.shortcut import (
    ShortcutSpec,
    describe_value,
    entry_name,
    parse_filter,
    parse_predicate,
    suggest,
)
from gateway.config.spel import compile_expression
from gateway.errors import ConfigError
from resilience.durations import parse_duration

NEW_PREFIX = ("spring", "cloud", "gateway", "server", "webflux")
OLD_PREFIX = ("spring", "cloud", "gateway")
_KEY = (RANK_DOCUMENT,)
_D = TypeVar("_D", PredicateDefinition, FilterDefinition)


def canonical(part: str) -> str:
    """Spring's relaxed binding: case, dashes and underscores don't tell names apart."""
    return part.replace("-", "").replace("_", "").lower()


def _split(key: str) -> list[str]:
    """A key's dotted parts, a ``[...]`` map key kept whole (``[/api/**]`` may hold dots)."""
    parts: list[str] = []
    current = ""
    depth = 0
    for char in key:
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        if char == "." and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part]


# -- value readers: each raises ConfigError/ValueError with the reason only ------------------
def _bool(value: object) -> bool:
    return parse_bool(value)


def _text(value: object) -> str:
    if isinstance(value, Mapping | list) or value is None:
        raise ConfigError(f"expected text, got {describe_value(value)}")
    return str(value)


def _port(value: object) -> int:
    number = _int(value)
    if not 0 <= number <= 65535:
        raise ConfigError(f"expected a port (0-65535), got {value!r}")
    return number


def _int(value: object) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"expected an integer, got {describe_value(value)}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise ConfigError(f"expected an integer, got {describe_value(value)}") from None


def _millis(value: object) -> float:
    # SCG's httpclient.connect-timeout is an Integer of milliseconds, not a Duration.
    number = _int(value)
    if number <= 0:
        raise ConfigError(f"expected a positive number of milliseconds, got {value!r}")
    return number / 1000.0


def _duration(value: object) -> float:
    seconds = parse_duration(value, default_unit="ms")
    if seconds <= 0:
        raise ConfigError(f"expected a positive duration (e.g. 2500ms, 5s), got {value!r}")
    return seconds


def _regex(value: object) -> str:
    text = _text(value)
    try:
        re.compile(text)
    except re.error as exc:
        raise ConfigError(f"not a valid regular expression: {exc}") from None
    return text


def _data_size(value: object) -> int:
    return parse_data_size(value)


def _expression(value: object) -> str:
    return compile_expression(value).text


def _cache_strategy(value: object) -> str:
    text = _text(value).strip().lower().replace("_", "-")
    allowed = ("skip-update-cache-entry", "update-cache-entry")
    if text not in allowed:
        raise ConfigError(f"expected one of {', '.join(allowed)}, got {value!r}")
    return text


def _status(value: object) -> int:
    """Spring's ``HttpStatusHolder.parse``: a number, or an ``HttpStatus`` name."""
    text = _text(value).strip()
    if text.isdigit() and 100 <= int(text) <= 599:
        return int(text)
    if text.upper() in HTTPStatus.__members__:
        return int(HTTPStatus[text.upper()])
    raise ConfigError(f"expected an HTTP status (a number or a name like FORBIDDEN), got {value!r}")


# An HTTP token (RFC 9110): what a header name must be.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _header_name(value: object) -> str:
    text = _text(value).strip()
    if not _TOKEN.fullmatch(text):
        raise ConfigError(f"expected a header name, got {value!r}")
    return text


def _header_names(value: object) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f"expected a list of header names, got {describe_value(value)}")
    return tuple(str(item).strip().lower() for item in items if str(item).strip())


@dataclass(frozen=True, slots=True)
class Property:
    """One property under the gateway prefix (``name`` in SCG's kebab form) and what is done
    with it: ``read`` parses an honoured value; with ``default`` set only that value (after
    ``read``) is accepted; without ``read`` the property is refused; ``reason`` says why."""

    name: str
    read: Callable[[object], Any] | None = None
    default: object = None
    reason: str = ""
    whole: bool = False  # a list or map value, read as one (not walked into)

    @property
    def refused(self) -> bool:
        return self.read is None

    @property
    def default_only(self) -> bool:
        return self.read is not None and self.reason != ""


def _honour(name: str, read: Callable[[object], Any], *, whole: bool = False) -> Property:
    return Property(name, read, whole=whole)


def _default(name: str, read: Callable[[object], Any], default: object, reason: str) -> Property:
    return Property(name, read, default, reason)


def _refuse(name: str, reason: str, *, whole: bool = False) -> Property:
    return Property(name, None, reason=reason, whole=whole)


_FORWARDED = (
    "meshgate always sends Forwarded/X-Forwarded-* as its forwarding rules say "
    "(README: forwarded headers)"
)
_POOL = (
    "meshgate's upstream connection pool is its own (GATEWAY_UPSTREAM_IDLE_TIMEOUT bounds idle "
    "connections); Reactor Netty's pool settings have no counterpart"
)
_SSL_STORE = (
    "Java key stores have no counterpart; the client certificate for mTLS to upstreams is a PEM "
    "chain and unencrypted key in GATEWAY_UPSTREAM_CLIENT_CERT_FILE and "
    "GATEWAY_UPSTREAM_CLIENT_KEY_FILE"
)
_SSL_BUNDLE = (
    "Spring SSL bundles have no counterpart; trust CAs with httpclient.ssl.trusted-x509-"
    "certificates or GATEWAY_UPSTREAM_CA_FILE, and present a client certificate with "
    "GATEWAY_UPSTREAM_CLIENT_CERT_FILE and GATEWAY_UPSTREAM_CLIENT_KEY_FILE"
)
_SSL_HANDSHAKE = (
    "the TLS handshake is part of connecting to the upstream: httpclient.connect-timeout "
    "(or GATEWAY_CONNECT_TIMEOUT) bounds the TCP connect and the handshake together"
)
_SSL_CLOSE = (
    "TLS connections are closed by the event loop's transport, which sends close_notify "
    "without waiting for the peer's; there is no timeout to set"
)
_PROXY = "meshgate does not send upstream requests through an HTTP/SOCKS proxy"
_VERSION = "API versioning (the Version predicate) is not supported"
_RATE_BEAN = (
    "it names a Java bean; meshgate's RequestRateLimiter takes key-resolver: principal, "
    "remote-addr, header:NAME, query:NAME or route on each filter, and its rate limiter is the "
    "built-in token bucket (in Redis with GATEWAY_REDIS_URL, else in each worker)"
)
_WEBMVC = (
    "this is SCG's Server WebMVC (servlet) variant; meshgate follows the WebFlux server "
    "(spring.cloud.gateway.server.webflux.*)"
)

PROPERTIES: tuple[Property, ...] = (
    _honour("routes", _text, whole=True),  # read by gateway.config.reader
    _honour("default-filters", _text, whole=True),  # likewise
    _default("enabled", _bool, True, "meshgate is the gateway: it cannot be switched off"),
    _default(
        "fail-on-route-definition-error",
        _bool,
        True,
        "an invalid route is always an error here (a reload keeps the last good routes)",
    ),
    _honour("trusted-proxies", _regex),
    _honour("httpclient.connect-timeout", _millis),
    _honour("httpclient.response-timeout", _duration),
    _default(
        "httpclient.compression",
        _bool,
        False,
        "meshgate passes Accept-Encoding and compressed bodies through unchanged",
    ),
    _default(
        "httpclient.max-header-size",
        _data_size,
        None,
        "GATEWAY_MAX_HEADER_SIZE bounds header size",
    ),
    _refuse(
        "httpclient.max-initial-line-length",
        "the request line is bounded by GATEWAY_MAX_HEADER_SIZE",
    ),
    *(
        _refuse(f"httpclient.pool.{name}", _POOL)
        for name in (
            "acquire-timeout",
            "eviction-interval",
            "leasing-strategy",
            "max-connections",
            "max-idle-time",
            "max-life-time",
            "metrics",
            "name",
            "type",
        )
    ),
    *(
        _refuse(f"httpclient.proxy.{name}", _PROXY)
        for name in ("host", "non-proxy-hosts-pattern", "password", "port", "type", "username")
    ),
    # Read into GATEWAY_UPSTREAM_TLS_VERIFY and GATEWAY_UPSTREAM_TRUSTED_CERTIFICATES.
    _honour("httpclient.ssl.use-insecure-trust-manager", _bool),
    _honour("httpclient.ssl.trusted-x509-certificates", _text, whole=True),  # read below
    _refuse("httpclient.ssl.handshake-timeout", _SSL_HANDSHAKE),
    _refuse("httpclient.ssl.close-notify-flush-timeout", _SSL_CLOSE),
    _refuse("httpclient.ssl.close-notify-read-timeout", _SSL_CLOSE),
    *(
        _refuse(f"httpclient.ssl.{name}", _SSL_STORE)
        for name in (
            "key-password",
            "key-store",
            "key-store-password",
            "key-store-provider",
            "key-store-type",
        )
    ),
    _refuse("httpclient.ssl.ssl-bundle", _SSL_BUNDLE),
    _refuse(
        "httpclient.websocket.max-frame-payload-length",
        "WebSocket frames are relayed as bytes, not decoded, so there is no frame limit to set",
    ),
    _default(
        "httpclient.websocket.proxy-ping",
        _bool,
        True,
        "pings are relayed to the upstream as SCG's default does",
    ),
    _default("httpclient.wiretap", _bool, False, "use GATEWAY_LOG_LEVEL=DEBUG"),
    _default("httpserver.wiretap", _bool, False, "use GATEWAY_LOG_LEVEL=DEBUG"),
    _default("httpserver.customizer-enabled", _bool, False, "there is no Netty server here"),
    _honour("discovery.locator.enabled", _bool),
    _honour("discovery.locator.lower-case-service-id", _bool),
    _honour("discovery.locator.route-id-prefix", _text),
    _honour("discovery.locator.include-expression", _expression),
    _honour("discovery.locator.url-expression", _expression),
    _honour("discovery.locator.predicates", _text, whole=True),  # read below, with specs
    _honour("discovery.locator.filters", _text, whole=True),
    _honour("metrics.enabled", _bool),
    _default(
        "metrics.prefix",
        _text,
        "spring.cloud.gateway",
        "the SCG metric is always spring_cloud_gateway_requests_seconds",
    ),
    _refuse("metrics.tags", "the SCG metric's labels are fixed", whole=True),
    _default("metrics.path-tags.enabled", _bool, False, "a path label would be unbounded"),
    _default("metrics.tags.path.enabled", _bool, False, "a path label would be unbounded"),
    _default(
        "observability.enabled",
        _bool,
        True,
        "tracing is OpenTelemetry's, set by OTEL_* variables",
    ),
    _default(
        "loadbalancer.use404",
        _bool,
        False,
        "a service without instances answers 503, as SCG's default does",
    ),
    _honour("set-status.original-status-header-name", _text),
    _honour("globalcors.cors-configurations", _text, whole=True),
    _default(
        "globalcors.add-to-simple-url-handler-mapping",
        _bool,
        False,
        "CORS is answered on the paths routes match; for a route with a Method predicate, "
        "add OPTIONS to it so its preflights reach the route",
    ),
    _default("handler-mapping.order", _int, 1, "the gateway's handler is the only one there is"),
    _default("route-filter-cache-enabled", _bool, False, "filters are built once per route anyway"),
    _default(
        "route-refresh-listener.enabled",
        _bool,
        True,
        "routes are rebuilt on every change of their sources",
    ),
    _default(
        "restrictive-property-accessor.enabled",
        _bool,
        True,
        "expressions are limited to the documented forms anyway",
    ),
    _refuse(
        "redis-route-definition-repository.enabled",
        "routes are stored in Consul KV (GATEWAY_CONSUL_ROUTES_KEY), not Redis",
    ),
    _honour("redis-rate-limiter.include-headers", _bool),
    *(
        _honour(f"redis-rate-limiter.{name}-header", _header_name)
        for name in ("burst-capacity", "remaining", "replenish-rate", "requested-tokens")
    ),
    _refuse(
        "redis-rate-limiter.config",
        "set each route's limits as its RequestRateLimiter arguments "
        "(redis-rate-limiter.replenishRate, burstCapacity, requestedTokens)",
        whole=True,
    ),
    _refuse(
        "streaming-media-types",
        "every response is streamed as it arrives; there is no list to set",
        whole=True,
    ),
    *(
        _refuse(f"version.{name}", _VERSION, whole=name == "supported-versions")
        for name in (
            "default-version",
            "detect-supported-versions",
            "header-name",
            "media-type",
            "media-type-param-name",
            "path-segment",
            "request-param-name",
            "required",
            "supported-versions",
        )
    ),
    _default("forwarded.enabled", _bool, True, _FORWARDED),
    _default("forwarded.by.enabled", _bool, False, _FORWARDED),
    _default("x-forwarded.enabled", _bool, True, _FORWARDED),
    _default("x-forwarded.order", _int, 0, _FORWARDED),
    *(
        _default(f"x-forwarded.{name}-{kind}", _bool, True, _FORWARDED)
        for name in ("for", "host", "port", "prefix", "proto")
        for kind in ("enabled", "append")
    ),
    _default(
        "predicate.host.include-port",
        _bool,
        True,
        "a Host pattern with a port matches that port (README: deliberate differences)",
    ),
    _honour("filter.local-response-cache.enabled", _bool),
    _honour("filter.local-response-cache.size", _data_size),
    _honour("filter.local-response-cache.time-to-live", _duration),
    _honour("filter.local-response-cache.request.no-cache-strategy", _cache_strategy),
    *(
        _honour(f"filter.secure-headers.{name}", _text)
        for name in (
            "content-security-policy",
            "content-type-options",
            "download-options",
            "frame-options",
            "permissions-policy",
            "permitted-cross-domain-policies",
            "referrer-policy",
            "strict-transport-security",
            "xss-protection-header",
        )
    ),
    _honour("filter.secure-headers.disable", _header_names, whole=True),
    _honour("filter.secure-headers.enable", _header_names, whole=True),
    _refuse(
        "filter.secure-headers.enabled-headers",
        "use filter.secure-headers.enable (or the route's enable argument)",
        whole=True,
    ),
    _refuse(
        "filter.secure-headers.disabled-headers",
        "use filter.secure-headers.disable (or the route's disable argument)",
        whole=True,
    ),
    _refuse(
        "filter.secure-headers.default-headers",
        "the default set is SCG's own; disable headers with filter.secure-headers.disable",
        whole=True,
    ),
    _honour("filter.request-rate-limiter.deny-empty-key", _bool),
    _honour("filter.request-rate-limiter.empty-key-status-code", _status),
    # Either value: a refusal always carries the JSON error body (what throwing gives in SCG).
    _honour("filter.request-rate-limiter.throw-on-limit", _bool),
    _refuse("filter.request-rate-limiter.default-key-resolver", _RATE_BEAN),
    _refuse("filter.request-rate-limiter.default-rate-limiter", _RATE_BEAN),
    _refuse(
        "filter.remove-hop-by-hop.headers",
        "the hop-by-hop set is RFC 9110's plus the Connection header's names, fixed",
        whole=True,
    ),
    _refuse("filter.remove-hop-by-hop.order", "the hop-by-hop headers are removed first, fixed"),
)

# SCG's factories that have an ``enabled`` switch but no counterpart here: switching them off
# is what meshgate does anyway; switching them on is refused when a route uses them.
SCG_FILTERS = (
    "add-request-header",
    "add-request-parameter",
    "add-response-header",
    "cache-request-body",
    "circuit-breaker",
    "dedupe-response-header",
    "fallback-headers",
    "json-to-grpc",
    "local-response-cache",
    "map-request-header",
    "modify-request-body",
    "modify-response-body",
    "prefix-path",
    "preserve-host-header",
    "redirect-to",
    "remove-json-attributes-response-body",
    "remove-request-header",
    "remove-request-parameter",
    "remove-response-header",
    "request-header-size",
    "request-header-to-request-uri",
    "request-rate-limiter",
    "request-size",
    "retry",
    "rewrite-location-response-header",
    "rewrite-location",
    "rewrite-path",
    "rewrite-request-parameter",
    "rewrite-response-header",
    "save-session",
    "secure-headers",
    "set-path",
    "set-request-header",
    "set-request-host-header",
    "set-request-uri",
    "set-response-header",
    "set-status",
    "strip-prefix",
    "token-relay",
)
SCG_PREDICATES = (
    "after",
    "before",
    "between",
    "cloud-foundry-route-service",
    "cookie",
    "header",
    "host",
    "method",
    "path",
    "query",
    "read-body",
    "remote-addr",
    "version",
    "weight",
    "xforwarded-remote-addr",
)
SCG_GLOBAL_FILTERS = (
    "adapt-cached-body",
    "forward-path",
    "forward-routing",
    "load-balancer-client",
    "local-response-cache",
    "netty-routing",
    "netty-write-response",
    "reactive-load-balancer-client",
    "remove-cached-body",
    "route-to-request-url",
    "websocket-routing",
)

_BY_CANONICAL: dict[tuple[str, ...], Property] = {
    tuple(canonical(part) for part in prop.name.split(".")): prop for prop in PROPERTIES
}
_WHOLE = frozenset(path for path, prop in _BY_CANONICAL.items() if prop.whole)
# Every prefix of a property, so a mapping on the way to one is walked into.
_BRANCHES = frozenset(path[:size] for path in _BY_CANONICAL for size in range(1, len(path)))
_SWITCHES = {"filter": SCG_FILTERS, "predicate": SCG_PREDICATES, "globalfilter": SCG_GLOBAL_FILTERS}


def property_names() -> list[str]:
    """Every property name the reader knows, in SCG's kebab form (for suggestions, docs)."""
    names = [prop.name for prop in PROPERTIES]
    names += [f"filter.{name}.enabled" for name in SCG_FILTERS]
    names += [f"predicate.{name}.enabled" for name in SCG_PREDICATES]
    names += [f"global-filter.{name}.enabled" for name in SCG_GLOBAL_FILTERS]
    return names


@dataclass(slots=True)
class _Entry:
    written: str  # the dotted path as the document spells it
    value: object


@dataclass(slots=True)
class _Found:
    """Everything under the gateway prefixes, by relative canonical path."""

    entries: dict[tuple[str, ...], _Entry] = field(default_factory=dict)
    unknown: list[tuple[tuple[str, ...], str]] = field(default_factory=list)


def _walk(
    node: object,
    written: tuple[str, ...],
    path: tuple[str, ...],
    visit: Callable[[tuple[str, ...], tuple[str, ...], object], bool],
) -> None:
    """Calls ``visit(written, canonical, value)`` for every leaf; ``visit`` returning True on
    a mapping means "take it whole", else it is walked into."""
    if not isinstance(node, Mapping):
        visit(written, path, node)
        return
    for raw_key, value in node.items():
        parts = _split(str(raw_key))
        if not parts:
            continue
        here_written = (*written, *parts)
        here = (*path, *(canonical(part) for part in parts))
        if isinstance(value, Mapping) and not visit(here_written, here, value):
            _walk(value, here_written, here, visit)
        elif not isinstance(value, Mapping):
            visit(here_written, here, value)


class SpringReader:
    """Reads one document's Spring settings into ``SpringSettings``, every mistake into
    ``errors`` (located by the dotted property path as written)."""

    def __init__(
        self,
        errors: ErrorCollector,
        predicates: Mapping[str, ShortcutSpec],
        filters: Mapping[str, ShortcutSpec],
    ) -> None:
        self.errors = errors
        self.predicates = predicates
        self.filters = filters
        self._found: dict[tuple[str, ...], _Entry] = {}
        self._values: dict[str, Any] = {}
        self._server: dict[str, tuple[str, object]] = {}
        self._switches: dict[str, dict[str, bool]] = {"filter": {}, "predicate": {}}

    def fail(self, reason: str, where: str) -> None:
        self.errors.fail(reason, where, key=_KEY)

    def read(self, data: Mapping[Any, Any]) -> SpringSettings:
        _walk(data, (), (), self._visit)
        return self._settings(self._values)

    # -- finding the properties --------------------------------------------------------------
    def _visit(self, written: tuple[str, ...], path: tuple[str, ...], value: object) -> bool:
        if path[: len(NEW_PREFIX)] == NEW_PREFIX:
            return self._gateway(written, len(NEW_PREFIX), path[len(NEW_PREFIX) :], value)
        if path[: len(OLD_PREFIX)] == OLD_PREFIX:
            rest = path[len(OLD_PREFIX) :]
            if rest[:1] == ("server",) and len(rest) == 1:
                return False  # walk on: server.webflux comes next
            if rest[:2] in (("server", "webmvc"), ("mvc",)) or rest[:1] == ("mvc",):
                self.fail(f"not supported: {_WEBMVC}", ".".join(written))
                return True
            if rest[:2] == ("server", "webflux"):
                return False
            return self._gateway(written, len(OLD_PREFIX), rest, value)
        if path[: len(OLD_PREFIX)] == OLD_PREFIX[: len(path)]:
            return False  # spring / spring.cloud: walk on towards the gateway prefix
        if path[:1] == ("server",) or path[:2] == ("management", "server"):
            return self._boot(written, path, value)
        # management: walk on towards management.server; any other Spring key (logging,
        # spring.application...) is not ours.
        return path != ("management",)

    def _gateway(
        self, written: tuple[str, ...], prefix: int, rel: tuple[str, ...], value: object
    ) -> bool:
        where = ".".join(written)
        if rel[:1] in (("routes",), ("defaultfilters",)):
            return True  # gateway.config.reader reads these
        if not rel:
            if not isinstance(value, Mapping):
                self.fail(f"expected a mapping, got {describe_value(value)}", where)
            return False
        for size in range(1, len(rel) + 1):
            if rel[:size] in _WHOLE:
                if size < len(rel):  # a dotted key reaching into a list or map: nest it
                    value = _nest(written[prefix + size :], value)
                    where = ".".join(written[: prefix + size])
                self._store(rel[:size], _Entry(where, value), merge=size < len(rel))
                return True
        if rel in _BY_CANONICAL:
            self._store(rel, _Entry(where, value))
            return True
        if rel in _BRANCHES and isinstance(value, Mapping):
            return False  # filter.local-response-cache.request: {no-cache-strategy: ...}
        if len(rel) == 1 and rel[0] in _SWITCHES and isinstance(value, Mapping):
            return False  # global-filter: {netty-routing: {enabled: true}}
        if rel[0] in _SWITCHES and len(rel) >= 2:
            return self._switch(rel, where, value)
        if isinstance(value, Mapping) and any(rel == b[: len(rel)] for b in _BRANCHES):
            return False
        self._unknown(written[prefix:], where)
        return True

    def _store(self, path: tuple[str, ...], entry: _Entry, *, merge: bool = False) -> None:
        before = self._found.get(path)
        if before is None:
            self._found[path] = entry
            prop = _BY_CANONICAL[path]
            if not prop.whole or prop.refused:  # lists and maps are read at the end
                parsed = self._value(prop, entry)  # now, so errors come in document order
                if parsed is not _INVALID:
                    self._values[prop.name] = parsed
            return
        if merge and isinstance(before.value, Mapping) and isinstance(entry.value, Mapping):
            before.value = _deep_merge(before.value, entry.value)
            return
        self.fail(f"also set as {before.written}; keep one", entry.written)

    def _switch(self, rel: tuple[str, ...], where: str, value: object) -> bool:
        kind = rel[0]
        names = {canonical(name): name for name in _SWITCHES[kind]}
        if len(rel) == 2 and isinstance(value, Mapping):
            return False  # filter.retry: {enabled: false}
        name = names.get(rel[1])
        if name is None:
            matches = suggest(rel[1], _SWITCHES[kind], limit=1)
            hint = f" (did you mean {matches[0]}?)" if matches else ""
            self.fail(f"unknown {kind.replace('globalfilter', 'global filter')}{hint}", where)
            return True
        if rel[2:] != ("enabled",):
            self._unknown(tuple(where.split(".")[-len(rel) :]), where)
            return True
        try:
            enabled = parse_bool(value)
        except ValueError as exc:
            self.fail(str(exc), where)
            return True
        if kind == "globalfilter":
            if name == "local-response-cache":
                # SCG: the global cache exists when filter.local-response-cache.enabled is
                # true and this is not false; the route filter stays either way.
                self._values["global-filter.local-response-cache.enabled"] = enabled
                return True
            if not enabled:
                self.fail(
                    f"the {name} step can't be switched off: it is how meshgate routes", where
                )
            return True
        self._switches[kind][name] = enabled
        return True

    def _unknown(self, rel_written: tuple[str, ...], where: str) -> None:
        wanted = ".".join(rel_written)
        matches = suggest(wanted, property_names(), limit=1)
        hint = f" (did you mean {matches[0]}?)" if matches else ""
        self.fail(f"unknown Spring Cloud Gateway property{hint}", where)

    def _boot(self, written: tuple[str, ...], path: tuple[str, ...], value: object) -> bool:
        where = ".".join(written)
        rel = path[2:] if path[0] == "management" else path[1:]
        scope = "management" if path[0] == "management" else "server"
        if not rel:
            return False
        if rel[0] == "ssl":
            enabled = not (isinstance(value, Mapping) and not parse_bool_or(value.get("enabled")))
            if enabled and value not in (False, "false"):
                reason = (
                    "the management port serves plain HTTP only (bind it to a private "
                    "address): remove this (Spring would serve TLS here)"
                    if scope == "management"
                    else "the proxy port's TLS is set with GATEWAY_TLS_CERT_FILE and "
                    "GATEWAY_TLS_KEY_FILE (PEM; GATEWAY_TLS_CLIENT_CA_FILE and "
                    "GATEWAY_TLS_CLIENT_AUTH for client certificates), not server.ssl: "
                    "remove this (Spring would serve TLS here)"
                )
                self.fail(reason, where)
            return True
        if rel in (("port",), ("address",)):
            self._server[f"{scope}.{rel[0]}"] = (where, value)
        return True  # every other server.* key is Spring Boot's, ignored as Spring does

    # -- values --------------------------------------------------------------------------------
    def _value(self, prop: Property, entry: _Entry) -> object:
        if prop.refused:
            self.fail(f"not supported: {prop.reason}", entry.written)
            return _INVALID
        assert prop.read is not None
        try:
            parsed = prop.read(entry.value)
        except (ConfigError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, ConfigError) else str(exc)
            self.fail(reason, entry.written)
            return _INVALID
        if prop.default_only and parsed != prop.default:
            shown = "unset" if prop.default is None else _show(prop.default)
            self.fail(
                f"only SCG's default ({shown}) is supported, got {_show(entry.value)}: "
                f"{prop.reason}",
                entry.written,
            )
            return _INVALID
        return parsed

    def _settings(self, values: Mapping[str, Any]) -> SpringSettings:
        cache = LocalResponseCacheSettings(
            enabled=values.get("filter.local-response-cache.enabled", False)
            and values.get("global-filter.local-response-cache.enabled", True),
            size=values.get("filter.local-response-cache.size"),
            time_to_live=values.get("filter.local-response-cache.time-to-live", 300.0),
            no_cache_strategy=values.get(
                "filter.local-response-cache.request.no-cache-strategy", "skip-update-cache-entry"
            ),
        )
        # filter.local-response-cache.enabled is also the factory's switch (SCG's
        # @ConditionalOnEnabledFilter): false takes the route filter away too.
        cache_off = frozenset(
            {"LocalResponseCache"}
            if values.get("filter.local-response-cache.enabled") is False
            and "LocalResponseCache" in self.filters
            else ()
        )
        secure = {
            name.removeprefix("filter.secure-headers."): value
            for name, value in values.items()
            if name.startswith("filter.secure-headers.")
        }
        header_lists: dict[str, tuple[str, ...]] = {}
        for which in ("disable", "enable"):
            entry = self._found.get(_path_of(f"filter.secure-headers.{which}"))
            if entry is not None:
                try:
                    header_lists[which] = _header_names(_indexed_list(entry.value))
                except ConfigError as exc:
                    self.fail(exc.reason, entry.written)
        filters = FilterSettings(
            original_status_header=values.get("set-status.original-status-header-name"),
            local_response_cache=cache,
            secure_headers=secure,
            secure_headers_disabled=header_lists.get("disable", ()),
            secure_headers_enabled=header_lists.get("enable", ()),
            disabled_filters=self._disabled("filter", self.filters) | cache_off,
            disabled_predicates=self._disabled("predicate", self.predicates),
            rate_limiter=_rate_limiter(values),
        )
        return SpringSettings(
            http_client=HttpClientSettings(
                connect_timeout=values.get("httpclient.connect-timeout"),
                response_timeout=values.get("httpclient.response-timeout"),
                ssl=self._ssl(values),
            ),
            trusted_proxies=values.get("trusted-proxies"),
            locator=self._locator(values),
            metrics_enabled=values.get("metrics.enabled"),
            filters=filters,
            cors=self._cors(),
            server=self._server_settings(),
        )

    def _disabled(self, kind: str, specs: Mapping[str, ShortcutSpec]) -> frozenset[str]:
        ours = {canonical(name): name for name in specs}
        return frozenset(
            ours[canonical(name)]
            for name, enabled in self._switches[kind].items()
            if not enabled and canonical(name) in ours
        )

    def _locator(self, values: Mapping[str, Any]) -> LocatorSettings:
        predicates = self._locator_entries("predicates", self.predicates, parse_predicate)
        filters = self._locator_entries("filters", self.filters, parse_filter)
        return LocatorSettings(
            enabled=values.get("discovery.locator.enabled"),
            lower_case_service_id=values.get("discovery.locator.lower-case-service-id", False),
            route_id_prefix=values.get("discovery.locator.route-id-prefix"),
            include_expression=values.get("discovery.locator.include-expression", "true"),
            url_expression=values.get("discovery.locator.url-expression", "'lb://'+serviceId"),
            predicates=predicates,
            filters=filters,
        )

    def _locator_entries(
        self,
        kind: str,
        specs: Mapping[str, ShortcutSpec],
        parse: Callable[[object, Mapping[str, ShortcutSpec]], _D],
    ) -> tuple[_D, ...] | None:
        entry = self._found.get(_path_of(f"discovery.locator.{kind}"))
        if entry is None:
            return None
        raw = _indexed_list(entry.value)
        if not isinstance(raw, list):
            self.fail(f"expected a list of {kind}, got {describe_value(raw)}", entry.written)
            return None
        out: list[_D] = []
        for index, item in enumerate(raw):
            name = entry_name(item)
            where = f"{entry.written}[{index}]" + (f" ({name})" if name else "")
            try:
                definition = parse(item, specs)
                for value in _strings(definition.args):
                    compile_expression(value)
            except ConfigError as exc:
                self.errors.add(exc, where, key=_KEY)
                continue
            out.append(definition)
        return tuple(out)

    def _cors(self) -> tuple[tuple[str, CorsConfiguration], ...]:
        entry = self._found.get(_path_of("globalcors.cors-configurations"))
        if entry is None:
            return ()
        if not isinstance(entry.value, Mapping):
            self.fail(
                f"expected a mapping of path pattern to CORS configuration, got "
                f"{describe_value(entry.value)}",
                entry.written,
            )
            return ()
        out: list[tuple[str, CorsConfiguration]] = []
        for raw_pattern, raw in entry.value.items():
            pattern = str(raw_pattern).strip()
            if pattern.startswith("[") and pattern.endswith("]"):
                pattern = pattern[1:-1]  # Spring's map-key brackets
            where = f"{entry.written}.[{pattern}]"
            try:
                check_cors_pattern(pattern)
                out.append((pattern, parse_cors(raw)))
            except ConfigError as exc:
                self.errors.add(exc, where, key=_KEY)
        return tuple(out)

    def _ssl(self, values: Mapping[str, Any]) -> HttpClientSslSettings:
        insecure = values.get("httpclient.ssl.use-insecure-trust-manager")
        entry = self._found.get(_path_of("httpclient.ssl.trusted-x509-certificates"))
        if entry is None:
            return HttpClientSslSettings(use_insecure_trust_manager=insecure)
        try:
            trusted = _certificate_files(_indexed_list(entry.value))
        except ConfigError as exc:
            self.fail(exc.reason, entry.written)
            trusted = ()
        if insecure and trusted:
            # SCG would quietly verify against the list; one of the two is a mistake.
            self.fail(
                "use-insecure-trust-manager: true turns verification off, so trusted "
                "certificates would never be checked: keep one of the two",
                entry.written,
            )
        return HttpClientSslSettings(insecure, trusted)

    def _server_settings(self) -> ServerSettings:
        read: dict[str, Any] = {}
        for name, (where, value) in self._server.items():
            try:
                read[name] = _port(value) if name.endswith(".port") else _text(value).strip()
            except ConfigError as exc:
                self.fail(exc.reason, where)
        return ServerSettings(
            port=read.get("server.port"),
            address=read.get("server.address"),
            management_port=read.get("management.port"),
            management_address=read.get("management.address"),
        )


_INVALID = object()


def _rate_limiter(values: Mapping[str, Any]) -> RateLimiterSettings:
    """The RequestRateLimiter factory's properties, SCG's defaults where unset."""
    base = RateLimiterSettings()
    factory = "filter.request-rate-limiter."
    redis = "redis-rate-limiter."
    return RateLimiterSettings(
        deny_empty_key=values.get(factory + "deny-empty-key", base.deny_empty_key),
        empty_key_status=values.get(factory + "empty-key-status-code", base.empty_key_status),
        include_headers=values.get(redis + "include-headers", base.include_headers),
        remaining_header=values.get(redis + "remaining-header", base.remaining_header),
        replenish_rate_header=values.get(
            redis + "replenish-rate-header", base.replenish_rate_header
        ),
        burst_capacity_header=values.get(
            redis + "burst-capacity-header", base.burst_capacity_header
        ),
        requested_tokens_header=values.get(
            redis + "requested-tokens-header", base.requested_tokens_header
        ),
    )


def _certificate_files(value: object) -> tuple[str, ...]:
    """``trusted-x509-certificates``: PEM files (a list, or comma-separated as Spring binds a
    string to a list), each a path or a ``file:`` location; relative paths are the working
    directory's."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f"expected a list of PEM file paths, got {describe_value(value)}")
    files: list[str] = []
    for item in items:
        if isinstance(item, Mapping | list | tuple) or item is None:
            raise ConfigError(f"expected a PEM file path, got {describe_value(item)}")
        text = str(item).strip()
        if not text:
            continue
        if text.startswith("classpath:"):
            raise ConfigError(f"{text!r}: there is no classpath here; give the file's path")
        path = text[len("file://") :] if text.startswith("file://") else text.removeprefix("file:")
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]+:", path):
            raise ConfigError(f"{text!r}: expected a file path (or file:PATH), not a URL")
        files.append(path)
    return tuple(files)


def _path_of(name: str) -> tuple[str, ...]:
    return tuple(canonical(part) for part in name.split("."))


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def parse_bool_or(value: object, default: bool = True) -> bool:
    if value is None:
        return default
    try:
        return parse_bool(value)
    except ValueError:
        return default


def _indexed_list(value: object) -> object:
    """A list written as ``{0: ..., 1: ...}`` or ``[0]: ...`` keys (properties style) as a list."""
    if isinstance(value, Mapping) and value:
        keys = [str(key).strip("[]") for key in value]
        if all(key.isdigit() for key in keys):
            return [value[raw] for _, raw in sorted(zip(map(int, keys), value, strict=True))]
    return value


def _strings(value: object) -> Iterable[object]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    else:
        yield value


def _nest(parts: Iterable[str], value: object) -> object:
    for part in reversed(list(parts)):
        value = {part: value}
    return value


def _deep_merge(a: Mapping[Any, Any], b: Mapping[Any, Any]) -> dict[Any, Any]:
    out = dict(a)
    for key, value in b.items():
        if isinstance(out.get(key), Mapping) and isinstance(value, Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
