"""Objects the unit tests' entry points point at (``tests.plugins.fakes:NAME``), one per way an
entry point can be right or wrong."""

from __future__ import annotations

from gateway.extension import (
    Args,
    BuildContext,
    Exchange,
    FilterFactory,
    GatewayFilter,
    Predicate,
    PredicateFactory,
    Response,
    SyncFilter,
)


class Stamp(SyncFilter):
    name = "Stamp"

    def __init__(self, header: str, value: str) -> None:
        self.header = header
        self.value = value

    def pre(self, exchange: Exchange) -> Response | None:
        exchange.request.headers.set(self.header, self.value)
        return None

    def describe(self) -> str:
        return f"[Stamp {self.header} = '{self.value}']"


def _stamp(args: Args, ctx: BuildContext) -> GatewayFilter:
    value: str = args.str("value", "stamped")
    if value == "bad":
        args.fail("value", "must not be 'bad'")
    return Stamp(args.str("header"), value)


class Always(Predicate):
    def test(self, exchange: Exchange) -> bool:
        return True

    def describe(self) -> str:
        return "Always"


def _always(args: Args, ctx: BuildContext) -> Predicate:
    return Always()


STAMP = FilterFactory("Stamp", ("header", "value"), _stamp)
ALWAYS = PredicateFactory("Always", (), _always)
SHADOW = FilterFactory("AddRequestHeader", ("name", "value"), _stamp)
LOWER_SHADOW = FilterFactory("addrequestheader", ("name", "value"), _stamp)
MISNAMED = FilterFactory("SomethingElse", (), _stamp)
BAD_NAME = FilterFactory("Bad-Name", (), _stamp)
BAD_FIELDS = FilterFactory("BadFields", ["header"], _stamp)  # type: ignore[arg-type]
NOT_A_FACTORY = "Stamp"


def make_stamp() -> FilterFactory:
    return FilterFactory("MadeStamp", ("header", "value"), _stamp)


def broken_maker() -> FilterFactory:
    raise RuntimeError("no configuration for the plugin")


def maker_with_args(name: str) -> FilterFactory:
    return FilterFactory(name, (), _stamp)
