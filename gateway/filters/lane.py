"""Gray-release lanes on a route: ``Lane=NAME`` puts every request in lane NAME,
``LaneSplit=NAME, PERCENT[, KEY]`` puts PERCENT of them there (sticky by ``header:NAME`` or
``cookie:NAME``, else drawn at random), ``LaneStrict`` answers 503 when the lane has no
instance instead of falling back to stable.

These only choose: the instance picker (``resilience.lanes``) narrows an ``lb://`` service to
the lane, and the forwarder writes the lane into the upstream's ``baggage``. A lane a filter
chose wins over one in inbound baggage. ``LaneStrict`` does nothing per request: the stack
reads it when it builds the route and makes the route's picker strict.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable

from gateway.config.args import Args
from gateway.exchange import Exchange, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, SyncFilter
from gateway.filters.describe import filter_text
from gateway.filters.header_args import check_header_name
from resilience.lanes import TrafficSplit, valid_lane

KeyOf = Callable[[Exchange], str | None]


class Lane(SyncFilter):
    name = "Lane"

    def __init__(self, lane: str) -> None:
        self.lane = lane

    def pre(self, exchange: Exchange) -> Response | None:
        exchange.lane = self.lane
        return None

    def describe(self) -> str:
        return filter_text(self.name, ("lane", self.lane))


class LaneSplit(SyncFilter):
    name = "LaneSplit"

    def __init__(self, split: TrafficSplit, key: str | None, rng: random.Random) -> None:
        self.split = split
        self._key = key
        kind, _, name = (key or "").partition(":")
        # The header case is read here directly: it is the common one, and Headers.get would
        # lower-case and encode the name again on every request.
        self._header = name.lower().encode("latin-1") if kind == "header" else None
        self._key_of = key_reader(key) if kind == "cookie" and key is not None else None
        self._rng = rng

    def pre(self, exchange: Exchange) -> Response | None:
        self._choose(exchange, self._rng)
        return None

    def preview(self, exchange: Exchange) -> Response | None:
        # A draw from a copy: the explain API shows the next keyless request's lane.
        self._choose(exchange, copy.copy(self._rng))
        return None

    def _choose(self, exchange: Exchange, rng: random.Random) -> None:
        header = self._header
        if header is not None:
            value: str | None = None
            for name, raw in exchange.request.headers.raw:
                if name.lower() == header:
                    value = raw.decode("latin-1")
                    break
            exchange.lane = self.split.sticky(value)
        elif self._key_of is not None:
            exchange.lane = self.split.sticky(self._key_of(exchange))
        else:
            exchange.lane = self.split.draw(rng)

    def describe(self) -> str:
        split = self.split
        return filter_text(
            self.name, ("lane", split.lane), ("percent", split.percent), ("key", self._key)
        )


class LaneStrict(SyncFilter):
    """A marker: the stack builds the route's picker strict and leaves this out of the chain."""

    name = "LaneStrict"

    def describe(self) -> str:
        return filter_text(self.name)


def key_reader(key: str) -> KeyOf:
    """``header:NAME`` (the first such field) or ``cookie:NAME`` (checked by ``_key``)."""
    kind, _, name = key.partition(":")
    if kind == "header":
        return lambda exchange: exchange.request.headers.get(name)

    def cookie(exchange: Exchange) -> str | None:
        # A plain split rather than http.cookies, which gives up on a whole header for one
        # cookie it dislikes (and that would silently move the user to stable).
        for header in exchange.request.headers.get_all("cookie"):
            for pair in header.split(";"):
                found, sep, value = pair.partition("=")
                if sep and found.strip() == name:
                    value = value.strip()
                    if len(value) >= 2 and value[0] == value[-1] == '"':
                        value = value[1:-1]
                    return value
        return None

    return cookie


def _lane(args: Args) -> str:
    lane: str = args.str("lane")
    if not valid_lane(lane):
        args.fail(
            "lane",
            f"{lane!r} is not a lane name (1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit)",
        )
    return lane


def _key(args: Args) -> str | None:
    key: str | None = args.str("key", None)
    if key is None:
        return None
    kind, sep, name = key.strip().partition(":")
    if not sep or kind not in ("header", "cookie") or not name.strip():
        args.fail("key", f"expected header:NAME or cookie:NAME, got {key!r}")
    name = name.strip()
    check_header_name(args, "key", name)  # a cookie name is a token too
    return f"{kind}:{name}"


def _build_lane(args: Args, ctx: BuildContext) -> GatewayFilter:
    lane = _lane(args)
    args.finish()
    return Lane(lane)


def _build_split(args: Args, ctx: BuildContext) -> GatewayFilter:
    lane = _lane(args)
    percent: float = args.float("percent")
    if not 0.0 <= percent <= 100.0:
        args.fail("percent", f"must be between 0 and 100, got {args.values['percent']!r}")
    key = _key(args)
    args.finish()
    # A generator of its own, seeded from the build's: the explain API forecasts its next
    # draw from a copy, which holds only while nothing else draws from it.
    return LaneSplit(TrafficSplit(lane, percent), key, random.Random(ctx.rng.getrandbits(64)))


def _build_strict(args: Args, ctx: BuildContext) -> GatewayFilter:
    args.finish()
    return LaneStrict()


FACTORIES: tuple[FilterFactory, ...] = (
    FilterFactory("Lane", ("lane",), _build_lane),
    FilterFactory("LaneSplit", ("lane", "percent", "key"), _build_split),
    FilterFactory("LaneStrict", (), _build_strict),
)
