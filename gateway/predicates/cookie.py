"""SCG's ``Cookie`` predicate: a request cookie of the given name has a value matching a Java
regular expression in full."""

from __future__ import annotations

from gateway.config.args import Args
from gateway.exchange import Exchange
from gateway.extension import BuildContext, Predicate, PredicateFactory, Verdict
from gateway.predicates.header import Regexp, compile_regexp


def cookie_values(cookie_headers: list[str], name: str) -> list[str]:
    """Values of cookie ``name`` across all ``Cookie`` fields (HTTP/2 may send several).

    Lenient like Netty's decoder: pairs without ``=`` are skipped and a value in double quotes
    is unquoted. Names compare case-sensitively (RFC 6265).
    """
    values: list[str] = []
    for header in cookie_headers:
        for pair in header.split(";"):
            key, eq, value = pair.partition("=")
            if eq and key.strip() == name:
                value = value.strip()
                if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                    value = value[1:-1]
                values.append(value)
    return values


class CookiePredicate(Predicate):
    __slots__ = ("name", "regexp")

    def __init__(self, name: str, regexp: Regexp) -> None:
        self.name = name
        self.regexp = regexp

    def test(self, exchange: Exchange) -> bool:
        headers = exchange.request.headers.get_all("cookie")
        if not headers:
            return False
        return any(self.regexp.fullmatch(v) for v in cookie_values(headers, self.name))

    def describe(self) -> str:
        return f"Cookie: name={self.name} regexp={self.regexp.text}"

    def explain(self, exchange: Exchange) -> Verdict:
        values = cookie_values(exchange.request.headers.get_all("cookie"), self.name)
        if self.test(exchange):
            return Verdict(True, f"cookie {self.name} matches {self.regexp.text}")
        if not values:
            return Verdict(False, f"no cookie {self.name}")
        shown = ", ".join(repr(v) for v in values)
        return Verdict(False, f"cookie {self.name} = {shown} does not match {self.regexp.text}")


def build(args: Args, ctx: BuildContext) -> Predicate:
    name: str = args.str("name")
    regexp = compile_regexp(args, "regexp", required=True)
    args.finish()
    if not name.strip():
        args.fail("name", "a cookie name is required")
    assert regexp is not None  # required=True either returns one or raises
    return CookiePredicate(name.strip(), regexp)


FACTORY = PredicateFactory(name="Cookie", shortcut_fields=("name", "regexp"), build=build)
