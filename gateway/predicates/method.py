"""SCG's ``Method`` predicate: the request method is one of a list."""

from __future__ import annotations

import re

from gateway.config.args import Args, ShortcutType
from gateway.exchange import Exchange
from gateway.extension import BuildContext, Predicate, PredicateFactory, Verdict

# RFC 9110 method = token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class MethodPredicate(Predicate):
    __slots__ = ("_allowed", "methods")

    def __init__(self, methods: tuple[str, ...]) -> None:
        self.methods = methods
        self._allowed = frozenset(methods)

    def test(self, exchange: Exchange) -> bool:
        return exchange.request.method in self._allowed

    def describe(self) -> str:
        return f"Methods: [{', '.join(self.methods)}]"

    def explain(self, exchange: Exchange) -> Verdict:
        method = exchange.request.method
        listed = ", ".join(self.methods)
        if self.test(exchange):
            return Verdict(True, f"method {method} is one of {listed}")
        return Verdict(False, f"method {method} is not one of {listed}")


def build(args: Args, ctx: BuildContext) -> Predicate:
    names: list[str] = args.str_list("methods")
    args.finish()
    if not names:
        args.fail("methods", "at least one method is required")
    methods: list[str] = []
    for name in names:
        if not _TOKEN.fullmatch(name):
            args.fail("methods", f"not an HTTP method: {name!r}")
        # Config is written as `get` as often as `GET`; the wire form is upper case.
        if name.upper() not in methods:
            methods.append(name.upper())
    return MethodPredicate(tuple(methods))


FACTORY = PredicateFactory(
    name="Method", shortcut_fields=("methods",), build=build, shortcut_type=ShortcutType.GATHER_LIST
)
