"""Filters that edit the query string: AddRequestParameter, RemoveRequestParameter.

They work on the raw query so parameters they do not touch keep their exact encoding.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from gateway.config.args import Args
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


FACTORIES: tuple[FilterFactory, ...] = (
    FilterFactory("AddRequestParameter", ("name", "value"), _build_add),
    FilterFactory("RemoveRequestParameter", ("name",), _build_remove),
)
