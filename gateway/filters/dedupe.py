"""DedupeResponseHeader: collapse repeated response header values (typically CORS headers that
both the gateway and the upstream set)."""

from __future__ import annotations

from enum import Enum

from gateway.config.args import Args
from gateway.exchange import Exchange, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, SyncFilter
from gateway.filters.describe import filter_text
from gateway.filters.header_args import check_header_name


class Strategy(Enum):
    RETAIN_FIRST = "RETAIN_FIRST"
    RETAIN_LAST = "RETAIN_LAST"
    RETAIN_UNIQUE = "RETAIN_UNIQUE"


class DedupeResponseHeader(SyncFilter):
    name = "DedupeResponseHeader"

    def __init__(self, names: str, strategy: Strategy) -> None:
        self._text = names
        # SCG splits on single spaces; empty names from repeated spaces do nothing there either.
        self._names = tuple(n for n in names.split(" ") if n.strip())
        self._strategy = strategy

    def post(self, exchange: Exchange, response: Response) -> None:
        headers = response.headers
        for header in self._names:
            values = headers.get_all(header)
            if len(values) <= 1:
                continue
            if self._strategy is Strategy.RETAIN_FIRST:
                headers.set(header, values[0])
            elif self._strategy is Strategy.RETAIN_LAST:
                headers.set(header, values[-1])
            else:
                headers.set_all(header, dict.fromkeys(values))

    def describe(self) -> str:
        return filter_text(self.name, (self._text, self._strategy))


def _build(args: Args, ctx: BuildContext) -> GatewayFilter:
    names: str = args.str("name")
    if not names.strip():
        args.fail("name", "must name at least one header")
    for header in names.split():
        check_header_name(args, "name", header)
    strategy_text: str = args.str("strategy", Strategy.RETAIN_FIRST.value)
    try:
        strategy = Strategy[strategy_text.strip().upper()]
    except KeyError:
        args.fail(
            "strategy",
            f"unknown strategy {strategy_text!r} (use {', '.join(s.name for s in Strategy)})",
        )
    args.finish()
    return DedupeResponseHeader(names, strategy)


FACTORIES: tuple[FilterFactory, ...] = (
    FilterFactory("DedupeResponseHeader", ("name", "strategy"), _build),
)
