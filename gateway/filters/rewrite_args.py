"""The ``regexp`` + ``replacement`` argument pair of SCG's rewriting filters (RewritePath,
RewriteResponseHeader): a Java regex and a Java replacement, compiled and cross-checked at
load so a replacement naming a group the regex lacks is a config error, not a request error."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config.args import Args
from gateway.patterns.java_regex import compile_java_regex, compile_replacement


@dataclass(frozen=True, slots=True)
class Rewrite:
    regexp: str
    replacement: str
    pattern: re.Pattern[str]
    replace: Callable[[re.Match[str]], str]


def rewrite_args(args: Args) -> Rewrite:
    regexp: str = args.str("regexp")
    replacement: str = args.str("replacement")
    try:
        pattern = compile_java_regex(regexp)
    except ValueError as exc:
        args.fail("regexp", str(exc))
    try:
        replace = compile_replacement(replacement, pattern)
    except ValueError as exc:
        args.fail("replacement", str(exc))
    return Rewrite(regexp, replacement, pattern, replace)
