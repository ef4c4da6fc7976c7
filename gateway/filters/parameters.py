"""Filters that edit the query string: AddRequestParameter, RemoveRequestParameter,
RewriteRequestParameter.

Add and Remove work on the raw query so parameters they do not touch keep their exact
encoding. RewriteRequestParameter does what SCG 5.0.4's does (checked against the real SCG):
it rebuilds the whole query from Spring's decoded parameter map, so every parameter comes out
re-encoded and grouped by name, whether or not the one it rewrites is there.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, unquote_to_bytes

from gateway.config.args import Args
from gateway.errors import BadRequest
from gateway.exchange import Exchange, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, SyncFilter
from gateway.filters.describe import filter_text
from gateway.filters.header_args import value_template
from gateway.filters.template import Template

# Query characters left as they are in added names/values; "&", "=", "+" and "#" are encoded
# because they would change how the query splits or decodes.
_QUERY_SAFE = "-._~!$'()*,;:@/?"


def _encode(text: str) -> str:
    return quote(text, safe=_QUERY_SAFE)


class AddRequestParameter(SyncFilter):
    name = "AddRequestParameter"

    def __init__(self, param: str, value: Template) -> None:
        self._param = param
        self._encoded_param = _encode(param)
        self._value = value

    def pre(self, exchange: Exchange) -> Response | None:
        request = exchange.request
        pair = f"{self._encoded_param}={_encode(self._value.expand(exchange.uri_variables))}"
        query = request.query
        if not query:
            request.query = pair
        elif query.endswith("&"):
            request.query = query + pair
        else:
            request.query = f"{query}&{pair}"
        return None

    def describe(self) -> str:
        return filter_text(self.name, (self._param, self._value.text))


class RemoveRequestParameter(SyncFilter):
    """Removes every occurrence of the parameter, compared by its decoded name."""

    name = "RemoveRequestParameter"

    def __init__(self, param: str) -> None:
        self._param = param

    def pre(self, exchange: Exchange) -> Response | None:
        request = exchange.request
        if not request.query:
            return None
        kept = [
            piece
            for piece in request.query.split("&")
            if unquote(piece.split("=", 1)[0]) != self._param
        ]
        request.query = "&".join(kept)
        return None

    def describe(self) -> str:
        return filter_text(self.name, ("name", self._param))


# Spring's AbstractServerHttpRequest.QUERY_PATTERN: a name runs to "=" or "&"; a value may hold
# "=". ``=x`` therefore reads as a parameter ``x`` with no value, as in Spring.
_QUERY_PAIR = re.compile(r"([^&=]+)(=?)([^&]+)?")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _decode(text: str) -> str:
    """Java's ``URLDecoder.decode(text, UTF_8)``: ``+`` is a space, escapes are UTF-8 bytes,
    a malformed sequence becomes U+FFFD. The raw query is latin-1 text of the wire's bytes."""
    if _BAD_ESCAPE.search(text):
        # SCG's server refuses such a URI with 400 before any filter runs.
        raise BadRequest(f"malformed percent-encoding in query parameter {text!r}")
    raw = unquote_to_bytes(text.replace("+", " ").encode("latin-1"))
    return raw.decode("utf-8", "replace")


def _encode_component(text: str) -> str:
    """Spring's ``UriUtils.encode(text, UTF_8)``: everything but RFC 3986 unreserved."""
    return quote(text, safe="")


class RewriteRequestParameter(SyncFilter):
    """Replaces every value of a parameter with one ``replacement`` (used as written, no
    ``{var}`` expansion), as SCG does: the parameters are decoded into a map grouped by name in
    first-seen order; the rewritten one is removed and added again, so it moves to the end;
    then every name and value is encoded anew (``x+y`` arrives as ``x%20y``, ``%41`` as ``A``)
    — also when the parameter is absent."""

    name = "RewriteRequestParameter"

    def __init__(self, param: str, replacement: str) -> None:
        self._param = param
        self._replacement = replacement

    def pre(self, exchange: Exchange) -> Response | None:
        request = exchange.request
        if not request.query:
            return None
        params: dict[str, list[str | None]] = {}
        for match in _QUERY_PAIR.finditer(request.query):
            raw_name, equals, raw_value = match.groups()
            value = _decode(raw_value) if raw_value is not None else ("" if equals else None)
            params.setdefault(_decode(raw_name), []).append(value)
        if self._param in params:
            del params[self._param]
            params[self._param] = [self._replacement]
        pairs: list[str] = []
        for name, values in params.items():
            encoded = _encode_component(name)
            for value in values:  # None: a bare ``flag`` stays bare
                pairs.append(encoded if value is None else f"{encoded}={_encode_component(value)}")
        request.query = "&".join(pairs)
        return None

    def describe(self) -> str:
        return filter_text(self.name, (self._param, self._replacement))


def _param_name(args: Args) -> str:
    name: str = args.str("name")
    if name == "":
        args.fail("name", "must not be empty")
    return name


def _build_add(args: Args, ctx: BuildContext) -> GatewayFilter:
    name = _param_name(args)
    value: str = args.str("value")
    if value == "":
        args.fail("value", "must not be empty")
    template = value_template(args, "value", value)
    args.finish()
    return AddRequestParameter(name, template)


def _build_remove(args: Args, ctx: BuildContext) -> GatewayFilter:
    name = _param_name(args)
    args.finish()
    return RemoveRequestParameter(name)


def _build_rewrite(args: Args, ctx: BuildContext) -> GatewayFilter:
    name = _param_name(args)
    # May be empty in the expanded form (the parameter is then sent as ``name=``); the
    # shortcut's empty token is dropped, as SCG drops it, so it is missing there.
    replacement: str = args.str("replacement")
    args.finish()
    return RewriteRequestParameter(name, replacement)


FACTORIES: tuple[FilterFactory, ...] = (
    FilterFactory("AddRequestParameter", ("name", "value"), _build_add),
    FilterFactory("RemoveRequestParameter", ("name",), _build_remove),
    FilterFactory("RewriteRequestParameter", ("name", "replacement"), _build_rewrite),
)
