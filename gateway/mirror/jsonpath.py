"""The JSONPath subset ``ignore-json-paths`` is written in, and how a concrete place in a JSON
document is named in a reported difference.

Supported, and nothing else (a config error names the path otherwise):
- ``$`` followed by one or more steps;
- ``.name`` (a member; letters, digits, ``_``, ``-`` and ``$``, not starting with a digit) and
  ``['any name']`` / ``["any name"]`` (a member named by a quoted string, ``\\`` escapes the
  quote and itself);
- ``[N]`` (an array element, N >= 0);
- ``[*]`` and ``.*`` (every element of an array or member of an object).

Refused because their meaning is not a fixed place: recursive descent (``..``), filters
(``[?(...)]``), slices (``[1:3]``), unions (``[0,1]``), negative indexes and ``$`` alone (use
no comparison instead of ignoring the whole body). A path names a place and everything under it:
ignoring ``$.meta`` ignores ``$.meta.time`` too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# One step of a concrete place: a member name or an array index.
Step = str | int

_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$\-]*")
_INDEX = re.compile(r"\d+")
SUPPORTED = "$.a.b, $.a[0], $.a[*].b, $.a.*, $['a b']"


class _Wildcard:
    __slots__ = ()

    def __repr__(self) -> str:
        return "*"


WILDCARD = _Wildcard()
Pattern = str | int | _Wildcard


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A compiled path: its text as written and its steps."""

    text: str
    steps: tuple[Pattern, ...]

    def __len__(self) -> int:
        return len(self.steps)

    def step_matches(self, depth: int, step: Step) -> bool:
        """Whether this path's step at ``depth`` takes ``step`` (a name or an index)."""
        wanted = self.steps[depth]
        if wanted is WILDCARD:
            return True
        if isinstance(wanted, int):
            return isinstance(step, int) and not isinstance(step, bool) and step == wanted
        return isinstance(step, str) and step == wanted


def parse(text: str) -> JsonPath:
    """Compile ``text``; ValueError says what is wrong with it."""
    source = text.strip()
    if not source.startswith("$"):
        raise ValueError(f"{text!r} must start with $ (supported forms: {SUPPORTED})")
    steps: list[Pattern] = []
    at = 1
    end = len(source)
    while at < end:
        char = source[at]
        if char == ".":
            if source.startswith("..", at):
                raise ValueError(f"{text!r}: recursive descent (..) is not supported")
            if source.startswith(".*", at):
                steps.append(WILDCARD)
                at += 2
                continue
            match = _NAME.match(source, at + 1)
            if match is None:
                raise ValueError(f"{text!r}: expected a member name after '.' at {at}")
            steps.append(match.group())
            at = match.end()
        elif char == "[":
            step, at = _bracket(text, source, at)
            steps.append(step)
        else:
            raise ValueError(
                f"{text!r}: unexpected {char!r} at {at} (supported forms: {SUPPORTED})"
            )
    if not steps:
        raise ValueError(f"{text!r} names the whole body: drop compare instead of ignoring it all")
    return JsonPath(source, tuple(steps))


def _bracket(text: str, source: str, at: int) -> tuple[Pattern, int]:
    inner = at + 1
    if inner < len(source) and source[inner] in "'\"":
        quote = source[inner]
        chars: list[str] = []
        index = inner + 1
        while index < len(source):
            char = source[index]
            if char == "\\" and index + 1 < len(source) and source[index + 1] in (quote, "\\"):
                chars.append(source[index + 1])
                index += 2
                continue
            if char == quote:
                break
            chars.append(char)
            index += 1
        else:
            raise ValueError(f"{text!r}: unterminated quoted name at {inner}")
        if not source.startswith("]", index + 1):
            raise ValueError(f"{text!r}: expected ']' after the quoted name at {index + 1}")
        return "".join(chars), index + 2
    close = source.find("]", inner)
    if close == -1:
        raise ValueError(f"{text!r}: unclosed '[' at {at}")
    body = source[inner:close].strip()
    if body == "*":
        return WILDCARD, close + 1
    if _INDEX.fullmatch(body):
        return int(body), close + 1
    if body.startswith("?"):
        why = "filter expressions are not supported"
    elif ":" in body:
        why = "slices are not supported"
    elif "," in body:
        why = "unions are not supported"
    elif body.startswith("-"):
        why = "negative indexes are not supported"
    else:
        why = f"unsupported subscript [{body}]"
    raise ValueError(f"{text!r}: {why} (supported forms: {SUPPORTED})")


def format_path(steps: Sequence[Step]) -> str:
    """A concrete place as JSONPath text: ``$.items[2].id``, ``$['a b']``."""
    parts = ["$"]
    for step in steps:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif _NAME.fullmatch(step):
            parts.append(f".{step}")
        else:
            escaped = step.replace("\\", "\\\\").replace("'", "\\'")
            parts.append(f"['{escaped}']")
    return "".join(parts)
