"""SetRequestUri and RequestHeaderToRequestUri: filters that choose, per request, the URL a
request is sent to instead of the route's ``uri`` (SCG's
``AbstractChangeRequestUriGatewayFilterFactory``).

What SCG 5.0.4 does, and so what these do:
- Both run at order 10001: after RouteToRequestUrlFilter and after every other route filter, so
  the header RequestHeaderToRequestUri reads is the one the route's own header filters left.
  The stack therefore takes them out of the filter chain and asks them, innermost, just before
  the request is sent (``stack.Retargeted``); several of them: the last URL found wins.
- The URL replaces the whole request URL: scheme, host, port, path and query (the request's own
  path and query are dropped; no path means ``/``; a fragment is dropped). ``Host`` is the new
  URL's authority unless PreserveHostHeader. ``lb://svc`` (SetRequestUri only) balances over
  ``svc`` but keeps the request's own path and query, as SCG's load-balancer filter does.
- A URL that ``java.net.URI`` refuses (an illegal character, a bad escape, not absolute), a
  template variable no predicate captured, an absent header: the filter changes nothing and
  the route goes where it would have gone (``no://op``: the empty 200 of a route nobody sent).
  RequestHeaderToRequestUri also ignores a value ``java.net.URL`` refuses (``lb:``, ``ws:``,
  ``forward:``, any scheme Java has no handler for).

Where meshgate fails loudly where SCG does not: a SetRequestUri template that can never work
(not an absolute URI, ``forward:`` — SCG recurses until its stack overflows —, a scheme nothing
sends to, user info) is a config error, not a filter silently ignored on every request.
"""

from __future__ import annotations

import re
import string
import unicodedata
from abc import abstractmethod
from dataclasses import dataclass
from urllib.parse import quote

from gateway.config.args import Args
from gateway.errors import GatewayError
from gateway.exchange import Exchange
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, SyncFilter
from gateway.filters.describe import filter_text
from gateway.filters.header_args import header_name
from gateway.filters.template import Template, compile_template

__all__ = [
    "FACTORIES",
    "ChangeRequestUri",
    "RequestHeaderToRequestUri",
    "RequestUrl",
    "SetRequestUri",
    "parse_request_url",
]

# SCG's order for both (RouteToRequestUrlFilter.ROUTE_TO_URL_FILTER_ORDER + 1), which its
# actuator shows.
ORDER = 10001

# Schemes a request can be sent to. ``lb`` balances over the service the host names.
SENT_SCHEMES = frozenset({"http", "https", "ws", "wss", "lb"})
# Schemes java.net.URL has a handler for in Java 17: a header naming another is ignored.
_JAVA_URL_SCHEMES = frozenset({"http", "https", "ftp", "file", "jar", "mailto", "jrt"})

# java.net.URI's character classes (RFC 2396 with RFC 2732's brackets).
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-_.!~*'()")
_PATH = _UNRESERVED | frozenset(";/:@&=+$,%")
_URIC = _UNRESERVED | frozenset(";/?:@&=+$,[]%")
_AUTHORITY = _UNRESERVED | frozenset(";:@&=+$,%[]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True, slots=True)
class RequestUrl:
    """An absolute URL as ``java.net.URI`` reads it, split into what sending it needs."""

    raw: str
    scheme: str  # lower case
    host: str  # as written (an ``lb`` service id keeps its case); "" when it names none
    port: int  # 0: none given (the scheme's default)
    target: str  # origin form: path ("/" when empty) and ?query, non-ASCII percent-encoded
    userinfo: bool = False
    port_valid: bool = True  # False for a port past 65535 (URI takes it, no socket does)


def _legal(text: str, allowed: frozenset[str]) -> bool:
    """Every character in ``allowed`` or in URI's "other" class: not US-ASCII, not a control
    character and not a space character."""
    for char in text:
        if char not in allowed:
            if char <= "\x9f":  # US-ASCII or a C1 control
                return False
            if unicodedata.category(char) in ("Zs", "Zl", "Zp"):
                return False
    return True


def parse_request_url(text: str) -> RequestUrl | None:
    """``text`` as ``URI.create`` takes it, or None when it refuses it or the URI is not
    absolute — the cases in which SCG leaves the request URL as it was."""
    scheme, colon, rest = text.partition(":")
    if not colon or not rest or not _SCHEME.fullmatch(scheme) or _BAD_ESCAPE.search(text):
        return None
    rest, _, fragment = rest.partition("#")
    if not _legal(fragment, _URIC):
        return None
    scheme = scheme.lower()
    if not rest.startswith("/"):  # opaque: ``mailto:a@b``, ``http:x``
        if not rest or not _legal(rest, _URIC):
            return None
        return RequestUrl(text, scheme, "", 0, "")
    authority = ""
    if rest.startswith("//"):
        end = len(rest)
        for mark in "/?":
            found = rest.find(mark, 2)
            if found != -1:
                end = min(end, found)
        authority, rest = rest[2:end], rest[end:]
        if not authority and not rest:
            return None  # ``http://``: URI expects an authority
    path, question, query = rest.partition("?")
    if not (_legal(authority, _AUTHORITY) and _legal(path, _PATH) and _legal(query, _URIC)):
        return None
    userinfo, at, hostport = authority.rpartition("@")
    host, port_text = hostport, ""
    if hostport.startswith("["):
        close = hostport.find("]")
        if close == -1 or (close + 1 < len(hostport) and hostport[close + 1] != ":"):
            return None
        host, port_text = hostport[1:close], hostport[close + 2 :]
        if "[" in userinfo or "]" in userinfo:
            return None
    elif "[" in authority or "]" in authority:
        return None
    else:
        host, _, port_text = hostport.partition(":")
    if port_text and not (port_text.isascii() and port_text.isdigit()):
        return None  # no host for URI (a registry authority); java.net.URL refuses it
    port = int(port_text) if port_text else 0
    target = (path or "/") + (question + query if query else "")
    if not target.isascii():
        # as URI.toASCIIString: UTF-8 escapes (whitespace was refused above)
        target = quote(target, safe=string.printable)
    return RequestUrl(
        text,
        scheme,
        host,
        port,
        target,
        userinfo=bool(at),
        port_valid=port <= 65535,
    )


class ChangeRequestUri(SyncFilter):
    """A filter that may name the URL the request goes to. It has no ``pre`` or ``post`` of
    its own: the stack asks ``request_url`` at SCG's order 10001, innermost."""

    order = ORDER

    @abstractmethod
    def request_url(self, exchange: Exchange) -> RequestUrl | None:
        """The URL this request goes to, or None to leave it where it was going."""

    @property
    def constant(self) -> RequestUrl | None:
        """The URL when it is the same for every request (known at build time)."""
        return None


class SetRequestUri(ChangeRequestUri):
    name = "SetRequestUri"

    def __init__(self, template: Template) -> None:
        self._template = template
        self._constant = parse_request_url(template.text) if template.is_constant else None
        self.services = _balanced_service(template)

    def request_url(self, exchange: Exchange) -> RequestUrl | None:
        if self._constant is not None:
            return self._constant
        try:
            # Spring's expansion inserts the (decoded) values as they are; URI then judges.
            text = self._template.expand(exchange.uri_variables)
        except GatewayError:
            return None  # SCG: "Map has no value for ..." is caught, the URL stays
        return parse_request_url(text)

    @property
    def constant(self) -> RequestUrl | None:
        return self._constant

    def describe(self) -> str:
        return filter_text(self.name, ("template", self._template.text))


class RequestHeaderToRequestUri(ChangeRequestUri):
    name = "RequestHeaderToRequestUri"

    def __init__(self, header: str) -> None:
        self._header = header

    def request_url(self, exchange: Exchange) -> RequestUrl | None:
        value = exchange.request.headers.get(self._header)  # the first, as getFirst
        if not value:
            return None
        url = parse_request_url(value)
        if url is None or url.scheme not in _JAVA_URL_SCHEMES:
            return None  # URI.create or URI.toURL refused it
        if url.scheme == "jar" and "!/" not in value:
            return None  # java.net.URL: "no !/ in spec"
        return url

    def describe(self) -> str:
        return filter_text(self.name, ("name", self._header))


def _balanced_service(template: Template) -> tuple[str, ...]:
    """The ``lb://`` service the template always names, for discovery to watch; none when
    its host comes from a variable (then discovery learns of the service only from a route
    that names it)."""
    one = parse_request_url(template.expand({name: "a" for name in template.names}))
    other = parse_request_url(template.expand({name: "b" for name in template.names}))
    if one is None or other is None or one.scheme != "lb" or one.host != other.host:
        return ()
    return (one.host,) if one.host else ()


def _check_template(args: Args, template: Template) -> None:
    """Refuse a template whose every expansion SCG would ignore or could not send."""
    text = template.text
    if text.startswith("{"):
        return  # the scheme itself comes from a variable: only a request can tell
    # Variables stand in as "0", which is legal in a scheme-less position, host, port and path.
    url = parse_request_url(template.expand({name: "0" for name in template.names}))
    if url is None:
        args.fail("template", f"{text!r} is not an absolute URI")
    if url.scheme == "forward":
        args.fail(
            "template",
            "forward: URIs are not supported here (SCG 5.0.4 recurses on them until its stack "
            "overflows); use a route with uri: forward:/path",
        )
    if url.scheme not in SENT_SCHEMES:
        args.fail(
            "template",
            f"nothing sends requests to {url.scheme}: URIs "
            "(use http, https, ws, wss or lb; SCG would answer an empty 200)",
        )
    if not url.host:
        args.fail("template", f"{text!r} names no host")
    if url.userinfo:
        args.fail("template", "user info in the URI is not supported (SCG 5.0.4 fails on it)")
    if not url.port_valid:
        args.fail("template", f"port {url.port} is not a TCP port")


def _build_set(args: Args, ctx: BuildContext) -> GatewayFilter:
    text: str = args.str("template")
    if text == "":
        args.fail("template", "must not be empty")
    try:
        template = compile_template(text)
    except ValueError as exc:
        args.fail("template", str(exc))
    _check_template(args, template)
    args.finish()
    return SetRequestUri(template)


def _build_header(args: Args, ctx: BuildContext) -> GatewayFilter:
    name = header_name(args)
    args.finish()
    return RequestHeaderToRequestUri(name)


FACTORIES: tuple[FilterFactory, ...] = (
    FilterFactory("SetRequestUri", ("template",), _build_set),
    FilterFactory("RequestHeaderToRequestUri", ("name",), _build_header),
)
