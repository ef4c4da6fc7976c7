"""SCG's ``{var}`` expansion of filter values from the URI variables Path/Host captured.

A template is parsed once at build time into literal and variable parts, so expanding it per
request is a join. Syntax follows Spring's URI templates: ``{name}``, or ``{name:regex}`` where
the regex (which may itself hold braces) only matters to the predicate that captured it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from gateway.errors import GatewayError

__all__ = ["Template", "compile_template", "escape_header_value", "escape_path_value"]


@dataclass(frozen=True, slots=True)
class Template:
    text: str
    # Alternating literal text (even positions) and variable names (odd positions).
    parts: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return self.parts[1::2]

    @property
    def is_constant(self) -> bool:
        return len(self.parts) == 1

    def expand(
        self, variables: Mapping[str, str], escape: Callable[[str], str] | None = None
    ) -> str:
        """Substitute ``variables``; ``escape`` makes each value safe for where it goes.

        A variable the request did not capture is a server-side error, as in SCG (the route's
        predicates and filters disagree): it fails the request rather than send a guess.
        """
        parts = self.parts
        if len(parts) == 1:
            return parts[0]
        out = [parts[0]]
        for index in range(1, len(parts), 2):
            name = parts[index]
            value = variables.get(name)
            if value is None:
                raise GatewayError(f"no value for URI template variable {name!r} in {self.text!r}")
            out.append(escape(value) if escape is not None else value)
            out.append(parts[index + 1])
        return "".join(out)


def compile_template(text: str) -> Template:
    """Parse ``text``; ``ValueError`` for an unclosed ``{`` or an empty variable name."""
    parts: list[str] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "{":
            literal.append(c)
            i += 1
            continue
        depth, j = 1, i + 1
        while j < n and depth:
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
            j += 1
        if depth:
            raise ValueError(f"template {text!r}: unclosed '{{' at index {i}")
        name = text[i + 1 : j - 1].split(":", 1)[0].strip()
        if not name:
            raise ValueError(f"template {text!r}: empty variable name at index {i}")
        parts.append("".join(literal))
        parts.append(name)
        literal = []
        i = j
    parts.append("".join(literal))
    return Template(text, tuple(parts))


# RFC 3986 pchar plus "/" and "%": characters a path may hold as they are. Existing escapes are
# kept (variables may arrive still percent-encoded); anything else (space, "?", "#") is encoded
# so a value can never end the path or split the request line.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


def escape_path_value(value: str) -> str:
    return quote(value, safe=_PATH_SAFE)


def escape_header_value(value: str) -> str:
    """A captured value decoded from the path could hold CR/LF/NUL; percent-encode those so a
    template can never inject a header line."""
    if "\r" in value or "\n" in value or "\0" in value:
        return value.replace("\r", "%0D").replace("\n", "%0A").replace("\0", "%00")
    return value
