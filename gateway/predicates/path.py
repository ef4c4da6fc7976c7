"""SCG's ``Path`` predicate: the request path matches one of Spring ``PathPattern``s."""

from __future__ import annotations

from gateway.config.args import Args, ShortcutType
from gateway.exchange import Exchange
from gateway.extension import BuildContext, Predicate, PredicateFactory, Verdict
from gateway.patterns.path_pattern import PathPattern


class PathPredicate(Predicate):
    __slots__ = ("match_trailing_slash", "patterns")

    def __init__(self, patterns: tuple[PathPattern, ...], match_trailing_slash: bool) -> None:
        self.patterns = patterns
        self.match_trailing_slash = match_trailing_slash

    def test(self, exchange: Exchange) -> bool:
        path = exchange.request.path
        # First matching pattern wins, as in SCG; its variables are the ones published.
        for pattern in self.patterns:
            variables = pattern.match(path)
            if variables is not None:
                exchange.uri_variables.update(variables)
                return True
        return False

    def path_keys(self) -> frozenset[str] | None:
        keys = {pattern.first_segment for pattern in self.patterns}
        if None in keys:
            return None  # some pattern starts with a variable or wildcard
        return frozenset(key for key in keys if key is not None)

    def route_pattern(self) -> str | None:
        return self.patterns[0].text if self.patterns else None

    def describe(self) -> str:
        texts = ", ".join(p.text for p in self.patterns)
        flag = "true" if self.match_trailing_slash else "false"
        return f"Paths: [{texts}], match trailing slash: {flag}"

    def explain(self, exchange: Exchange) -> Verdict:
        path = exchange.request.path
        if self.test(exchange):
            pattern = next(p for p in self.patterns if p.match(path) is not None)
            return Verdict(True, f"path {path} matches {pattern.text}")
        texts = ", ".join(p.text for p in self.patterns)
        return Verdict(False, f"path {path} does not match {texts}")


def build(args: Args, ctx: BuildContext) -> Predicate:
    # ``pattern`` is how SCG's documentation writes the discovery locator's Path argument
    # (``args[pattern]``); SCG gathers every value of a Path's arguments, whatever its key.
    if args.has("pattern") and not args.has("patterns"):
        texts: list[str] = args.str_list("pattern")
    else:
        texts = args.str_list("patterns")
    trailing: bool = args.bool("matchTrailingSlash", True)
    # SCG still binds the deprecated name of the same setting.
    if args.has("matchOptionalTrailingSeparator"):
        trailing = args.bool("matchOptionalTrailingSeparator")
    args.finish()
    if not texts:
        args.fail("patterns", "at least one path pattern is required")
    patterns: list[PathPattern] = []
    for text in texts:
        try:
            patterns.append(PathPattern.parse(text, match_trailing_slash=trailing))
        except ValueError as exc:
            args.fail("patterns", str(exc))
    return PathPredicate(tuple(patterns), trailing)


FACTORY = PredicateFactory(
    name="Path",
    shortcut_fields=("patterns", "matchTrailingSlash"),
    build=build,
    shortcut_type=ShortcutType.GATHER_LIST_TAIL_FLAG,
)
