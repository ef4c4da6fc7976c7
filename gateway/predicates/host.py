"""SCG's ``Host`` predicate: the ``Host`` header matches one of Ant-style host patterns."""

from __future__ import annotations

from gateway.config.args import Args, ShortcutType
from gateway.exchange import Exchange
from gateway.extension import BuildContext, Predicate, PredicateFactory, Verdict
from gateway.patterns.host_pattern import HostPattern


class HostPredicate(Predicate):
    __slots__ = ("patterns",)

    def __init__(self, patterns: tuple[HostPattern, ...]) -> None:
        self.patterns = patterns

    def test(self, exchange: Exchange) -> bool:
        host = exchange.request.headers.get("host") or exchange.original_host
        if not host:
            return False
        for pattern in self.patterns:
            variables = pattern.match(host)
            if variables is not None:
                exchange.uri_variables.update(variables)
                return True
        return False

    def describe(self) -> str:
        return f"Hosts: [{', '.join(p.text for p in self.patterns)}]"

    def explain(self, exchange: Exchange) -> Verdict:
        host = exchange.request.headers.get("host") or exchange.original_host
        texts = ", ".join(p.text for p in self.patterns)
        if not host:
            return Verdict(False, "the request has no Host")
        if self.test(exchange):
            return Verdict(True, f"host {host} matches {texts}")
        return Verdict(False, f"host {host} does not match {texts}")


def build(args: Args, ctx: BuildContext) -> Predicate:
    texts: list[str] = args.str_list("patterns")
    args.finish()
    if not texts:
        args.fail("patterns", "at least one host pattern is required")
    patterns: list[HostPattern] = []
    for text in texts:
        try:
            patterns.append(HostPattern.parse(text))
        except ValueError as exc:
            args.fail("patterns", str(exc))
    return HostPredicate(tuple(patterns))


FACTORY = PredicateFactory(
    name="Host", shortcut_fields=("patterns",), build=build, shortcut_type=ShortcutType.GATHER_LIST
)
