"""SCG's ``Header`` predicate: a request header is present, or one of its values matches a Java
regular expression in full (``String.matches`` semantics).

Also home of ``compile_regexp``, the regex argument the value predicates share (``Header``,
``Query``, ``Cookie``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.config.args import Args
from gateway.exchange import Exchange
from gateway.extension import BuildContext, Predicate, PredicateFactory, Verdict
from gateway.patterns.java_regex import compile_java_regex


@dataclass(frozen=True, slots=True)
class Regexp:
    """A configured Java regex: ``text`` as written (for ``describe``), ``fullmatch`` to test."""

    text: str
    pattern: re.Pattern[str]

    def fullmatch(self, value: str) -> bool:
        return self.pattern.fullmatch(value) is not None


def compile_regexp(args: Args, name: str, *, required: bool = False) -> Regexp | None:
    """The Java regex argument ``name``, compiled; None when absent or empty."""
    text: str | None = args.str(name) if required else args.str(name, None)
    if text is None or text == "":
        if required:
            args.fail(name, "a regular expression is required")
        return None
    try:
        return Regexp(text, compile_java_regex(text))
    except ValueError as exc:
        args.fail(name, str(exc))


def split_list(value: str) -> list[str]:
    """Spring's ``HttpHeaders.getValuesAsList``: split on commas outside double quotes, trim,
    and unquote quoted elements."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == '"':
            quoted = not quoted
        elif ch == "\\" and quoted and i + 1 < len(value):
            i += 1
            current.append(value[i])
        elif ch == "," and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    items.append("".join(current).strip())
    return [item for item in items if item]


class HeaderPredicate(Predicate):
    __slots__ = ("header", "regexp")

    def __init__(self, header: str, regexp: Regexp | None) -> None:
        self.header = header
        self.regexp = regexp

    def test(self, exchange: Exchange) -> bool:
        values = exchange.request.headers.get_all(self.header)
        if not values:
            return False
        if self.regexp is None:
            return True
        match = self.regexp.fullmatch
        for value in values:
            # Current SCG matches each element of a comma-separated list; older releases matched
            # the whole field. Either counts, so configs written for both keep routing.
            if match(value) or any(match(item) for item in split_list(value)):
                return True
        return False

    def describe(self) -> str:
        regexp = self.regexp.text if self.regexp is not None else "null"
        return f"Header: {self.header} regexp={regexp}"

    def explain(self, exchange: Exchange) -> Verdict:
        values = exchange.request.headers.get_all(self.header)
        matched = self.test(exchange)
        if not values:
            return Verdict(False, f"no header {self.header}")
        if self.regexp is None:
            return Verdict(True, f"header {self.header} is present")
        if matched:
            return Verdict(True, f"header {self.header} matches {self.regexp.text}")
        shown = ", ".join(repr(v) for v in values)
        return Verdict(False, f"header {self.header} = {shown} does not match {self.regexp.text}")


def build(args: Args, ctx: BuildContext) -> Predicate:
    header: str = args.str("header")
    regexp = compile_regexp(args, "regexp")
    args.finish()
    if not header.strip():
        args.fail("header", "a header name is required")
    return HeaderPredicate(header.strip(), regexp)


FACTORY = PredicateFactory(name="Header", shortcut_fields=("header", "regexp"), build=build)
