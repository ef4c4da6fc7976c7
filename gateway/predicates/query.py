"""SCG's ``Query`` predicate: a query parameter is present, or one of its values matches a Java
regular expression in full."""

from __future__ import annotations

from urllib.parse import unquote_plus

from gateway.config.args import Args
from gateway.exchange import Exchange
from gateway.extension import BuildContext, Predicate, PredicateFactory, Verdict
from gateway.predicates.header import Regexp, compile_regexp


def query_values(query: str, param: str) -> list[str | None]:
    """Decoded values of ``param`` in a raw query string, as Spring's ``getQueryParams`` sees
    them: ``+`` is a space, and ``?flag`` (no ``=``) is present with a null value.

    Hand-rolled rather than ``parse_qsl`` only to keep that null, which SCG never matches
    against a regexp while ``?flag=`` (an empty value) it does.
    """
    values: list[str | None] = []
    for pair in query.split("&"):
        if not pair:
            continue
        raw_name, eq, raw_value = pair.partition("=")
        if unquote_plus(raw_name) == param:
            values.append(unquote_plus(raw_value) if eq else None)
    return values


class QueryPredicate(Predicate):
    __slots__ = ("param", "regexp")

    def __init__(self, param: str, regexp: Regexp | None) -> None:
        self.param = param
        self.regexp = regexp

    def test(self, exchange: Exchange) -> bool:
        query = exchange.request.query
        if not query:
            return False
        values = query_values(query, self.param)
        if self.regexp is None:
            return bool(values)
        return any(value is not None and self.regexp.fullmatch(value) for value in values)

    def describe(self) -> str:
        regexp = self.regexp.text if self.regexp is not None else "null"
        return f"Query: param={self.param} regexp={regexp}"

    def explain(self, exchange: Exchange) -> Verdict:
        query = exchange.request.query
        values = query_values(query, self.param) if query else []
        matched = self.test(exchange)
        if self.regexp is None:
            present = "present" if matched else "absent"
            return Verdict(matched, f"query parameter {self.param} is {present}")
        if matched:
            return Verdict(True, f"query parameter {self.param} matches {self.regexp.text}")
        if not values:
            return Verdict(False, f"no query parameter {self.param}")
        shown = ", ".join(repr(v) if v is not None else "(no value)" for v in values)
        return Verdict(
            False, f"query parameter {self.param} = {shown} does not match {self.regexp.text}"
        )


def build(args: Args, ctx: BuildContext) -> Predicate:
    param: str = args.str("param")
    regexp = compile_regexp(args, "regexp")
    args.finish()
    if not param.strip():
        args.fail("param", "a parameter name is required")
    return QueryPredicate(param.strip(), regexp)


FACTORY = PredicateFactory(name="Query", shortcut_fields=("param", "regexp"), build=build)
