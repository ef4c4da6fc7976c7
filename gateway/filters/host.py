"""PreserveHostHeader and SetRequestHostHeader: what Host the upstream sees.

The forwarder sends the upstream's own host:port as Host unless ``exchange.preserve_host`` is
set, in which case the Host header in ``exchange.request.headers`` goes out as it is.
"""

from __future__ import annotations

from gateway.config.args import Args
from gateway.exchange import Exchange, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, SyncFilter
from gateway.filters.describe import filter_text, style_value
from gateway.filters.header_args import header_template
from gateway.filters.template import Template, escape_header_value


class PreserveHostHeader(SyncFilter):
    name = "PreserveHostHeader"

    def pre(self, exchange: Exchange) -> Response | None:
        exchange.preserve_host = True
        return None

    def describe(self) -> str:
        return filter_text(self.name)


class SetRequestHostHeader(SyncFilter):
    name = "SetRequestHostHeader"

    def __init__(self, host: Template) -> None:
        self._host = host

    def pre(self, exchange: Exchange) -> Response | None:
        host = self._host.expand(exchange.uri_variables, escape_header_value)
        headers = exchange.request.headers
        headers.remove("Host")
        headers.add("Host", host)
        # without this the forwarder would replace the Host just set
        exchange.preserve_host = True
        return None

    def describe(self) -> str:
        return f"[{self.name} {style_value(self._host.text)}]"


def _build_preserve(args: Args, ctx: BuildContext) -> GatewayFilter:
    args.finish()
    return PreserveHostHeader()


def _build_set_host(args: Args, ctx: BuildContext) -> GatewayFilter:
    host = header_template(args, "host")
    if any(c.isspace() for c in host.text):
        args.fail("host", f"{host.text!r} is not a valid host")
    args.finish()
    return SetRequestHostHeader(host)


FACTORIES: tuple[FilterFactory, ...] = (
    FilterFactory("PreserveHostHeader", (), _build_preserve),
    FilterFactory("SetRequestHostHeader", ("host",), _build_set_host),
)
