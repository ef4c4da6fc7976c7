"""CORS at request time, as SCG 5.0.4 does it (Spring Framework 7.0's ``DefaultCorsProcessor``
run by ``RoutePredicateHandlerMapping`` once a route matched).

SCG keeps one table per route build: every route's ``metadata.cors`` under the route's first
``Path`` pattern (``/**`` without one), in route order, then each ``globalcors`` pattern that
no route took; a request's configuration is the first entry whose pattern matches its path
(Spring's default ``PathPattern`` parser: no optional trailing slash). Then, for a request to
a route:

- no entry matches: nothing at all is done, except that a preflight (``OPTIONS`` with
  ``Origin`` and ``Access-Control-Request-Method``) is answered 200 with no CORS headers and
  never forwarded;
- an entry matches: the response gets ``Vary: Origin, Access-Control-Request-Method,
  Access-Control-Request-Headers`` first (also when the request is not a CORS request); a
  request without ``Origin`` or from the same origin (scheme, ``Host`` and port) goes on as it
  is, a same-origin preflight is answered 200;
- a CORS request whose origin, method (the preflight's requested method) or — on a
  preflight — requested headers are not allowed is refused 403, a malformed ``Origin`` too;
- an allowed preflight is answered 200 with ``Access-Control-Allow-Origin``, ``-Methods``,
  ``-Headers`` (the requested ones allowed, when any were requested), ``-Expose-Headers``,
  ``-Credentials``, ``-Private-Network`` and ``Max-Age``; an allowed actual request is
  forwarded and its response (an error response too) gets the same headers but the three
  preflight-only ones, before the upstream's own.

Internal forwards (``forward:`` URIs, fallbacks) are not checked again: SCG drops the
``Origin`` of a forwarded request for exactly that.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.config.cors import ALL, DEFAULT_METHODS, CorsConfiguration
from gateway.errors import ConfigError
from gateway.exchange import Exchange
from gateway.patterns.path_pattern import PathPattern

ALL_PATHS = "/**"

Field = tuple[bytes, bytes]

# DefaultCorsProcessor's VARY_HEADERS, one field each, as Reactor Netty writes them.
VARY: tuple[Field, ...] = (
    (b"Vary", b"Origin"),
    (b"Vary", b"Access-Control-Request-Method"),
    (b"Vary", b"Access-Control-Request-Headers"),
)


@dataclass(frozen=True, slots=True)
class CorsVerdict:
    """What the processor decided for one request. ``status``: None to forward the request
    (its response then gets ``headers`` first), 200 to answer a preflight now with
    ``headers``, 403 to refuse it (``reason`` says why; the response gets ``headers``)."""

    status: int | None
    headers: tuple[Field, ...]
    reason: str = ""


# The verdicts that carry nothing of the request, made once.
_PREFLIGHT_UNCONFIGURED = CorsVerdict(200, ())
_VARY_ONLY = CorsVerdict(None, VARY)
_VARY_PREFLIGHT = CorsVerdict(200, VARY)

_PORTS = re.compile(r"(.*):\[(\*|\d+(,\d+)*)]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def _origin_regex(pattern: str) -> re.Pattern[str]:
    """Spring's ``OriginPattern``: ``*`` is any text, ``:[8080,8081]`` one of the ports,
    ``:[*]`` any port or none; everything else literal, case-sensitive."""
    ports = None
    found = _PORTS.fullmatch(pattern)
    if found:
        pattern, ports = found.group(1), found.group(2)
    text = ".*".join(re.escape(part) for part in pattern.split("*"))
    if ports is not None:
        text += r"(:\d+)?" if ports == ALL else ":(" + ports.replace(",", "|") + ")"
    return re.compile(text, re.DOTALL)


class CorsRule:
    """One ``CorsConfiguration`` ready for requests: Spring's ``checkOrigin``,
    ``checkHttpMethod`` and ``checkHeaders``, and the response values worked out once."""

    __slots__ = (
        "_any_header",
        "_any_method",
        "_any_origin",
        "_headers",
        "_methods",
        "_methods_value",
        "_origins",
        "_patterns",
        "config",
        "credentials",
        "exposed",
        "max_age",
        "private_network",
    )

    def __init__(self, config: CorsConfiguration) -> None:
        self.config = config
        self._any_origin = ALL in config.allowed_origins
        self._origins = frozenset(origin.lower() for origin in config.allowed_origins)
        self._patterns = tuple(
            (pattern, _origin_regex(pattern)) for pattern in config.allowed_origin_patterns
        )
        methods = config.allowed_methods or DEFAULT_METHODS
        self._any_method = ALL in methods
        self._methods = frozenset(methods)
        self._methods_value = ",".join(methods)  # Spring joins these without a space
        self._any_header = ALL in config.allowed_headers
        self._headers = frozenset(header.lower() for header in config.allowed_headers)
        self.exposed = (
            ", ".join(config.exposed_headers).encode("latin-1") if config.exposed_headers else None
        )
        self.credentials = config.allow_credentials is True
        self.private_network = config.allow_private_network is True
        self.max_age = str(config.max_age).encode() if config.max_age is not None else None

    def check_origin(self, origin: str) -> str | None:
        """The ``Access-Control-Allow-Origin`` value, or None: not allowed."""
        if not origin.strip():
            return None
        wanted = origin[:-1] if origin.endswith("/") else origin
        if self._any_origin:
            return ALL
        if wanted.lower() in self._origins:
            return origin  # as the client wrote it
        for declared, regex in self._patterns:
            if declared == ALL or regex.fullmatch(wanted):
                return origin
        return None

    def check_method(self, method: str) -> str | None:
        """The ``Access-Control-Allow-Methods`` value, or None: not allowed. Methods compare
        case-sensitively, as Spring's ``HttpMethod`` does."""
        if self._any_method:
            return method
        return self._methods_value if method in self._methods else None

    def check_headers(self, requested: list[str]) -> list[str] | None:
        """The requested headers that are allowed (as requested), or None: none is. Asking
        for none is fine; asking where no header is allowed is not."""
        if not requested:
            return []
        if not self._headers:
            return None
        if self._any_header:
            return requested
        allowed = [header for header in requested if header.lower() in self._headers]
        return allowed or None


class CorsPolicy:
    """SCG's CORS table for one route build, shared by all its routes. Immutable."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Iterable[tuple[str, CorsConfiguration]]) -> None:
        compiled: list[tuple[str, PathPattern, CorsRule]] = []
        for text, config in entries:
            try:
                pattern = PathPattern.parse(text, match_trailing_slash=False)
            except ValueError as exc:
                raise ConfigError(f"CORS path pattern {text!r}: {exc}") from exc
            compiled.append((text, pattern, CorsRule(config)))
        self._entries = tuple(compiled)

    @classmethod
    def of(
        cls,
        routes: Iterable[tuple[str, CorsConfiguration]],
        globals_: Iterable[tuple[str, CorsConfiguration]],
    ) -> CorsPolicy | None:
        """SCG's merge (``CorsGatewayFilterApplicationListener``): the routes' entries in
        route order — a later route with the same pattern replaces the configuration in
        place — then each global pattern that no route took. None when there is none."""
        table: dict[str, CorsConfiguration] = {}
        for text, config in routes:
            table[text] = config
        for text, config in globals_:
            table.setdefault(text, config)
        return cls(table.items()) if table else None

    @property
    def patterns(self) -> tuple[str, ...]:
        """The table's patterns, in lookup order."""
        return tuple(text for text, _, _ in self._entries)

    def lookup(self, path: str) -> CorsRule | None:
        for _, pattern, rule in self._entries:
            if pattern.matches(path):
                return rule
        return None

    def check(self, exchange: Exchange) -> CorsVerdict | None:
        """Spring's ``DefaultCorsProcessor.process`` for a request to a route, and what the
        handler mapping then does with a preflight. None: nothing to do."""
        request = exchange.request
        headers = request.headers
        origin = headers.get("origin")
        preflight = (
            request.method == "OPTIONS"
            and origin is not None
            and "access-control-request-method" in headers
        )
        rule = self.lookup(request.path)
        if rule is None:
            return _PREFLIGHT_UNCONFIGURED if preflight else None
        if origin is None:
            return _VARY_ONLY
        try:
            if _same_origin(exchange, origin):
                return _VARY_PREFLIGHT if preflight else _VARY_ONLY
        except ValueError:
            return _refused(f"malformed Origin {origin!r}")
        allow_origin = rule.check_origin(origin)
        if allow_origin is None:
            return _refused(f"origin {origin!r} is not allowed")
        # A preflight asks about the method of the request to come.
        method = (headers.get("access-control-request-method") or "") if preflight else None
        wanted = request.method if method is None else method
        allow_methods = rule.check_method(wanted)
        if allow_methods is None:
            return _refused(f"method {wanted!r} is not allowed")
        out = list(VARY)
        out.append((b"Access-Control-Allow-Origin", allow_origin.encode("latin-1")))
        if preflight:
            requested = _tokens(headers.get_all("access-control-request-headers"))
            allow_headers = rule.check_headers(requested)
            if allow_headers is None:
                return _refused(f"headers {', '.join(requested)!r} are not allowed")
            out.append((b"Access-Control-Allow-Methods", allow_methods.encode("latin-1")))
            if allow_headers:
                value = ", ".join(allow_headers).encode("latin-1")
                out.append((b"Access-Control-Allow-Headers", value))
        if rule.exposed is not None:
            out.append((b"Access-Control-Expose-Headers", rule.exposed))
        if rule.credentials:
            out.append((b"Access-Control-Allow-Credentials", b"true"))
        if rule.private_network and (
            (headers.get("access-control-request-private-network") or "").lower() == "true"
        ):
            out.append((b"Access-Control-Allow-Private-Network", b"true"))
        if preflight and rule.max_age is not None:
            out.append((b"Access-Control-Max-Age", rule.max_age))
        return CorsVerdict(200 if preflight else None, tuple(out))


def _refused(reason: str) -> CorsVerdict:
    return CorsVerdict(403, VARY, f"Invalid CORS request: {reason}")


def _tokens(values: Sequence[str]) -> list[str]:
    """A comma-separated header's values, trimmed, empty ones dropped (Spring's
    ``getValuesAsList``)."""
    return [token.strip() for value in values for token in value.split(",") if token.strip()]


def _same_origin(exchange: Exchange, origin: str) -> bool:
    """Spring's ``CorsUtils.isSameOrigin``: the request's scheme, ``Host`` (case-sensitive)
    and port (the scheme's default when ``Host`` has none) against the ``Origin``'s. Raises
    ``ValueError`` for an ``Origin`` that is no URI (Spring then refuses the request)."""
    scheme, host, port = _origin_parts(origin)
    if scheme is None or host is None:
        return False  # "null", "domain.com": a relative reference, never this origin
    own_scheme = exchange.scheme
    authority = exchange.request.headers.get("host")
    if authority:
        own_host, own_port = _authority(authority)
    else:
        own_host, own_port = exchange.server_host, exchange.server_port
    if own_port < 0:
        own_port = _DEFAULT_PORTS.get(own_scheme, -1)
    if port < 0:
        port = _DEFAULT_PORTS.get(scheme, -1)
    return scheme == own_scheme and host == own_host and port == own_port


def _origin_parts(origin: str) -> tuple[str | None, str | None, int]:
    if any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in origin):
        raise ValueError(origin)
    found = _SCHEME.match(origin)
    if found is None:
        return None, None, -1
    scheme = found.group(1)
    rest = origin[found.end() :]
    if not rest.startswith("//"):
        return scheme, None, -1
    authority = re.split(r"[/?#]", rest[2:], maxsplit=1)[0]
    host, port = _authority(authority.rpartition("@")[2])
    return scheme, host or None, port


def _authority(text: str) -> tuple[str, int]:
    """``host[:port]`` -> (host, port or -1); raises ``ValueError`` for a port that is not a
    number. IPv6 hosts keep their brackets, as ``java.net.URI.getHost`` does."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(text)
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(text)
        digits = rest[1:]
    else:
        host, _, digits = text.partition(":")
    if not digits:
        return host, -1
    if not digits.isdigit():
        raise ValueError(text)
    return host, int(digits)
