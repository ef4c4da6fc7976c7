"""An example meshgate plugin, written only against the public API (``gateway.extension``):

- ``AddRequestTimestamp=X-Request-Start, ms``: a SyncFilter that tells the upstream when the
  gateway took the request, as ``t=<epoch>`` (the header APM agents read for queueing time);
- ``InjectDelay=20ms``: a WrappingFilter that awaits (latency injection for resilience drills)
  and says so in a response header;
- ``HeaderPrefix=X-Tenant, acme-``: a predicate on a header's prefix.
"""

from __future__ import annotations

import asyncio
import re

from gateway.extension import (
    Args,
    BuildContext,
    Exchange,
    FilterFactory,
    GatewayFilter,
    Handler,
    Predicate,
    PredicateFactory,
    Response,
    SyncFilter,
    WrappingFilter,
)

# RFC 9110 token: what a header name may be.
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000}


def _header_name(args: Args, field: str, default: str | None = None) -> str:
    name: str = args.str(field) if default is None else args.str(field, default)
    if not _TOKEN.match(name):
        args.fail(field, f"not a header name: {name!r}")
    return name


# -- AddRequestTimestamp ---------------------------------------------------------------------------
class AddRequestTimestamp(SyncFilter):
    name = "AddRequestTimestamp"

    def __init__(self, header: str, unit: str, ctx: BuildContext) -> None:
        self._header = header
        self._unit = unit
        self._scale = _PER_SECOND[unit]
        self._now = ctx.now  # the gateway's clock, injectable like the built-ins'

    def pre(self, exchange: Exchange) -> Response | None:
        exchange.request.headers.set(self._header, f"t={int(self._now() * self._scale)}")
        return None

    def describe(self) -> str:
        return f"[{self.name} name = '{self._header}', unit = '{self._unit}']"


def _timestamp(args: Args, ctx: BuildContext) -> GatewayFilter:
    header = _header_name(args, "name", "X-Request-Start")
    unit: str = args.str("unit", "ms")
    if unit not in _PER_SECOND:
        args.fail("unit", f"expected one of {', '.join(_PER_SECOND)}, got {unit!r}")
    return AddRequestTimestamp(header, unit, ctx)


ADD_REQUEST_TIMESTAMP = FilterFactory("AddRequestTimestamp", ("name", "unit"), _timestamp)


# -- InjectDelay -----------------------------------------------------------------------------------
class InjectDelay(WrappingFilter):
    name = "InjectDelay"

    def __init__(self, delay: float) -> None:
        self._delay = delay

    def wrap(self, inner: Handler) -> Handler:
        delay = self._delay
        marker = f"{round(delay * 1000)}ms"

        async def delayed(exchange: Exchange) -> Response:
            await asyncio.sleep(delay)
            response = await inner(exchange)
            response.headers.set("X-Injected-Delay", marker)
            return response

        return delayed

    def describe(self) -> str:
        return f"[{self.name} delay = {round(self._delay * 1000)}ms]"


def _delay(args: Args, ctx: BuildContext) -> GatewayFilter:
    delay: float = args.duration("delay")
    if not 0 <= delay <= 10:
        args.fail("delay", f"must be between 0 and 10s, got {args.values['delay']!r}")
    return InjectDelay(delay)


def inject_delay() -> FilterFactory:
    """Registered as a callable (the other form an entry point may take)."""
    return FilterFactory("InjectDelay", ("delay",), _delay)


# -- HeaderPrefix ----------------------------------------------------------------------------------
class HeaderPrefix(Predicate):
    def __init__(self, header: str, prefix: str) -> None:
        self._header = header
        self._prefix = prefix

    def test(self, exchange: Exchange) -> bool:
        value = exchange.request.headers.get(self._header)
        return value is not None and value.startswith(self._prefix)

    def describe(self) -> str:
        return f"Header: {self._header} prefix={self._prefix}"


def _header_prefix(args: Args, ctx: BuildContext) -> Predicate:
    return HeaderPrefix(_header_name(args, "header"), args.str("prefix"))


HEADER_PREFIX = PredicateFactory("HeaderPrefix", ("header", "prefix"), _header_prefix)
