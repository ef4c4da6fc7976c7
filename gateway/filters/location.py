"""RewriteLocationResponseHeader: replace the upstream's host:port (and optionally an API
version prefix) in a Location-like response header with the gateway's."""

from __future__ import annotations

import re
from enum import Enum

from gateway.config.args import Args
from gateway.exchange import Exchange, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, SyncFilter
from gateway.filters.describe import filter_text
from gateway.filters.header_args import check_header_name, check_header_value
from gateway.patterns.java_regex import translate_java_regex

_VERSIONED_PATH = re.compile(r"^/v\d+/.*", re.DOTALL)
_HOST_PORT = re.compile(r"[^:/]+(?::\d+)?(?=/)")
_HOST_PORT_VERSION = re.compile(r"[^:/]+(?::\d+)?(?:/v\d+)?(?=/)")
DEFAULT_PROTOCOLS = "https?|ftps?"


class StripVersion(Enum):
    NEVER_STRIP = "NEVER_STRIP"
    AS_IN_REQUEST = "AS_IN_REQUEST"
    ALWAYS_STRIP = "ALWAYS_STRIP"


class RewriteLocationResponseHeader(SyncFilter):
    """SCG matches ``(?<=^(?:protocols)://)host(:port)?(/vN)?(?=/)``; Python's look-behind must
    be fixed-width, so the scheme is matched first and the host part right after it."""

    name = "RewriteLocationResponseHeader"

    def __init__(
        self,
        strip_version: StripVersion,
        header: str,
        host_value: str | None,
        protocols: str,
        scheme: re.Pattern[str],
    ) -> None:
        self._strip = strip_version
        self._header = header
        self._host_value = host_value
        self._protocols = protocols
        self._scheme = scheme
        self._key = f"rewrite_location:{id(self)}"

    def pre(self, exchange: Exchange) -> Response | None:
        # SCG uses the request as this filter saw it, before later filters rewrite path or Host
        request = exchange.request
        host = self._host_value or request.headers.get("Host")
        exchange.attributes[self._key] = (host, request.path)
        return None

    def post(self, exchange: Exchange, response: Response) -> None:
        location = response.headers.get(self._header)
        seen = exchange.attributes.get(self._key)
        if location is None or seen is None or seen[0] is None:
            return
        host, path = seen
        scheme = self._scheme.match(location)
        if scheme is None:
            return
        strip = self._strip is StripVersion.ALWAYS_STRIP or (
            self._strip is StripVersion.AS_IN_REQUEST and not _VERSIONED_PATH.match(path)
        )
        found = (_HOST_PORT_VERSION if strip else _HOST_PORT).match(location, scheme.end())
        if found is None:
            return
        fixed = location[: found.start()] + host + location[found.end() :]
        response.headers.set(self._header, fixed)

    def describe(self) -> str:
        return filter_text(
            self.name,
            ("stripVersion", self._strip),
            ("locationHeaderName", self._header),
            ("hostValue", self._host_value),
            ("protocols", self._protocols),
        )


def _build(args: Args, ctx: BuildContext) -> GatewayFilter:
    mode_text: str = args.str("stripVersion", StripVersion.AS_IN_REQUEST.value)
    try:
        mode = StripVersion[mode_text.strip().upper()]
    except KeyError:
        names = ", ".join(m.name for m in StripVersion)
        args.fail("stripVersion", f"unknown mode {mode_text!r} (use {names})")
    header: str = args.str("locationHeaderName", "Location")
    check_header_name(args, "locationHeaderName", header)
    host: str | None = args.str("hostValue", None)
    if host is not None:
        check_header_value(args, "hostValue", host)
    protocols: str = args.str("protocols", DEFAULT_PROTOCOLS)
    try:
        translated, unicode = translate_java_regex(protocols)
        scheme = re.compile(f"(?:{translated})://", 0 if unicode else re.ASCII)
    except (ValueError, re.error) as exc:
        args.fail("protocols", f"not a valid regular expression: {exc}")
    args.finish()
    return RewriteLocationResponseHeader(mode, header, host, protocols, scheme)


FACTORIES: tuple[FilterFactory, ...] = (
    FilterFactory(
        "RewriteLocationResponseHeader",
        ("stripVersion", "locationHeaderName", "hostValue", "protocols"),
        _build,
    ),
)
