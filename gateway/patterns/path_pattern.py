"""Spring WebFlux ``PathPattern`` semantics, compiled once to a Python regular expression.

Syntax (the one SCG's ``Path`` predicate uses):

- ``{var}`` one whole, non-empty segment, captured;  ``{var:regex}`` the same, constrained;
- ``*`` zero or more characters within a segment (a lone ``*`` segment needs at least one);
- ``?`` exactly one character;
- ``**`` zero or more segments, only as the last segment: ``/blue/**`` matches ``/blue``,
  ``/blue/`` and ``/blue/x/y`` but not ``/bluex``;
- ``{*rest}`` like ``**`` but captured, leading slash included: ``/a/{*rest}`` on ``/a/b/c`` gives
  ``rest=/b/c`` and on ``/a`` gives ``rest=``;
- anything else is a literal, compared case-sensitively.

With ``match_trailing_slash`` (SCG's ``matchTrailingSlash``, default true) a pattern whose last
element is a segment also matches the path with one extra ``/``: ``/red/{seg}`` matches ``/red/x/``.

Matching follows Spring's ``PathContainer``: each segment is compared by its *decoded* value with
``;matrix=params`` removed, so ``/a%20b`` matches the literal ``/a b`` and captured variables are
percent-decoded. Paths without ``%`` or ``;`` (nearly all) are matched as they are; the others are
first rewritten segment by segment into that decoded view.

How the regex stays exact: every element except the tail (``**``/``{*x}``) matches exactly one
separator or one segment, so segment boundaries are fixed by position and the whole path can be
one regex. A segment with a user ``{var:regex}`` is matched there as "any segment" and its own
compiled regex is then checked against exactly that segment text, because a user regex like
``.+`` must never run across a ``/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

# A decoded ``%2F`` must not act as a separator (Spring splits segments before decoding); it
# travels through the match as this non-character and is turned back into ``/`` in captures.
_SLASH = "\uffff"
_ANY_SEGMENT = "[^/]+"
_TAIL = "(?s:.*)"


@dataclass(frozen=True, slots=True)
class _Var:
    name: str
    constraint: str | None  # user regex, or None for "anything within the segment"


@dataclass(frozen=True, slots=True)
class _Checked:
    """A segment matched loosely by the path regex and then exactly by its own regex."""

    group: str
    regex: re.Pattern[str]
    names: tuple[tuple[str, str], ...]  # (regex group, variable name)


class PathPattern:
    """A parsed pattern. Immutable; ``match`` is safe to call from anywhere."""

    __slots__ = (
        "_checked",
        "_groups",
        "_regex",
        "first_segment",
        "literal_prefix",
        "match_trailing_slash",
        "text",
    )

    text: str
    match_trailing_slash: bool
    literal_prefix: str
    _regex: re.Pattern[str]
    _groups: tuple[tuple[str, str], ...]
    _checked: tuple[_Checked, ...]

    def __init__(
        self,
        text: str,
        match_trailing_slash: bool,
        literal_prefix: str,
        regex: re.Pattern[str],
        groups: tuple[tuple[str, str], ...],
        checked: tuple[_Checked, ...],
    ) -> None:
        self.text = text
        self.match_trailing_slash = match_trailing_slash
        self.literal_prefix = literal_prefix
        self.first_segment = _literal_first_segment(text)
        self._regex = regex
        self._groups = groups
        self._checked = checked

    def __repr__(self) -> str:
        return f"PathPattern({self.text!r})"

    @property
    def regex(self) -> str:
        """The compiled path regex (for diagnostics)."""
        return self._regex.pattern

    @classmethod
    def parse(cls, pattern: str, *, match_trailing_slash: bool = True) -> PathPattern:
        """Compile ``pattern``; raise ``ValueError`` saying what is wrong and where."""
        return _Compiler(pattern, match_trailing_slash).compile()

    def match(self, path: str) -> dict[str, str] | None:
        """The captured variables (percent-decoded) when ``path`` matches, else None.

        ``path`` is the raw (still percent-encoded) request path without the query.
        """
        view = _decoded_view(path) if ("%" in path or ";" in path) else path
        found = self._regex.fullmatch(view)
        if found is None:
            return None
        variables: dict[str, str] = {}
        for group, name in self._groups:
            variables[name] = found.group(group) or ""
        for checked in self._checked:
            segment = checked.regex.fullmatch(found.group(checked.group))
            if segment is None:
                return None
            for group, name in checked.names:
                variables[name] = segment.group(group)
        if view is not path:
            for name, value in variables.items():
                if _SLASH in value:
                    variables[name] = value.replace(_SLASH, "/")
        return variables

    def matches(self, path: str) -> bool:
        return self.match(path) is not None


def _literal_first_segment(text: str) -> str | None:
    """The pattern's first segment when it is plain text (no variable or wildcard), else None.
    A path can only match if its own first segment (``first_segment_of``) equals it, which is
    what lets the route table skip most routes without running their regexes."""
    source = text if text.startswith("/") else "/" + text
    first = source.split("/", 2)[1]
    if any(ch in first for ch in "{}*?%;"):
        return None
    return first


def first_segment_of(path: str) -> str:
    """A request path's first segment as patterns compare it (``;params`` cut, decoded)."""
    first = path.split("/", 2)[1] if path.startswith("/") else path.split("/", 1)[0]
    cut = first.find(";")
    if cut >= 0:
        first = first[:cut]
    return unquote(first) if "%" in first else first


def _decoded_view(path: str) -> str:
    """Spring's ``PathContainer`` view: per segment, drop ``;params`` and percent-decode."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        cut = part.find(";")
        if cut >= 0:
            part = part[:cut]
        if "%" in part:
            part = unquote(part).replace("/", _SLASH)
        parts[i] = part
    return "/".join(parts)


def _is_name(name: str) -> bool:
    # Spring accepts Java identifiers plus '-'.
    return (
        name != ""
        and (name[0].isalpha() or name[0] in "_$")
        and all(c.isalnum() or c in "_$-" for c in name[1:])
    )


class _Compiler:
    """One-shot translator from pattern text to regex pieces."""

    def __init__(self, pattern: str, match_trailing_slash: bool) -> None:
        self.text = pattern
        # Like Spring's ``initFullPathPattern``: a pattern written without its leading slash
        # would otherwise never match a request path, which always starts with one.
        self.source = pattern if pattern == "" or pattern.startswith("/") else "/" + pattern
        self.offset = len(self.source) - len(pattern)
        self.trailing = match_trailing_slash
        self.names: set[str] = set()
        self.counter = 0

    def fail(self, reason: str, pos: int | None = None) -> ValueError:
        where = f" (at position {pos - self.offset})" if pos is not None else ""
        return ValueError(f"invalid path pattern {self.text!r}: {reason}{where}")

    def compile(self) -> PathPattern:
        tokens = self._split()
        regex: list[str] = []
        prefix: list[str] = []
        prefix_open = True
        groups: list[tuple[str, str]] = []
        checked: list[_Checked] = []
        ends_in_segment = False
        for index, (kind, value, pos) in enumerate(tokens):
            last = index == len(tokens) - 1
            ends_in_segment = False
            if kind == "/":
                follower = tokens[index + 1] if not last else None
                if follower is not None and self._is_tail(follower[1]):
                    continue  # the tail element owns its leading slash
                regex.append("/")
                if prefix_open:
                    prefix.append("/")
                continue
            if value == "**" or value.startswith("{*"):
                if not last:
                    what = "'**'" if value == "**" else f"'{value}'"
                    raise self.fail(f"{what} is only allowed at the end", pos)
                owns_slash = index > 0 and tokens[index - 1][0] == "/"
                lead = "/" if owns_slash else ""
                if value == "**":
                    regex.append(f"(?:{lead}{_TAIL})?" if lead else _TAIL)
                else:
                    name = self._tail_name(value, pos)
                    group = self._group()
                    regex.append(
                        f"(?P<{group}>{lead}{_TAIL})?" if lead else f"(?P<{group}>{_TAIL})"
                    )
                    groups.append((group, name))
                prefix_open = False
                continue
            ends_in_segment = True
            pieces = self._segment(value, pos)
            if any(isinstance(p, _Var) and p.constraint is not None for p in pieces):
                group = self._group()
                seg_regex, names = self._segment_regex(pieces, pos)
                regex.append(f"(?P<{group}>{_ANY_SEGMENT})")
                checked.append(_Checked(group, seg_regex, names))
            else:
                regex.append(self._inline(pieces, groups))
            if prefix_open:
                for piece in pieces:
                    if not isinstance(piece, str) or piece in ("*", "?"):
                        prefix_open = False
                        break
                    prefix.append(piece[1:])
        if self.trailing and (ends_in_segment or self.source == ""):
            regex.append("/?")
        return PathPattern(
            text=self.text,
            match_trailing_slash=self.trailing,
            literal_prefix="".join(prefix),
            regex=re.compile("".join(regex)),
            groups=tuple(groups),
            checked=tuple(checked),
        )

    @staticmethod
    def _is_tail(value: str) -> bool:
        return value == "**" or value.startswith("{*")

    def _group(self) -> str:
        self.counter += 1
        return f"g{self.counter}"

    def _split(self) -> list[tuple[str, str, int]]:
        """Separators and segment texts with their positions; braces may hold escaped text."""
        tokens: list[tuple[str, str, int]] = []
        src = self.source
        i = 0
        start = 0
        while i < len(src):
            ch = src[i]
            if ch == "/":
                if i > start:
                    tokens.append(("seg", src[start:i], start))
                tokens.append(("/", "/", i))
                start = i + 1
            elif ch == "{":
                i = self._skip_variable(i)
            elif ch == "}":
                raise self.fail("unbalanced braces: '}' without '{'", i)
            i += 1
        if start < len(src):
            tokens.append(("seg", src[start:], start))
        return tokens

    def _skip_variable(self, open_pos: int) -> int:
        """Index of the ``}`` closing the variable opened at ``open_pos``.

        As in Spring, a constraint regex may nest balanced braces (``{id:\\d{3}}``) and escape
        any character, but may not contain an unescaped ``/``.
        """
        src = self.source
        i = open_pos + 1
        in_regex = False
        depth = 0
        while i < len(src):
            ch = src[i]
            if in_regex and ch == "\\":
                i += 2
                continue
            if ch == "/":
                break
            if ch == ":" and not in_regex:
                in_regex = True
            elif ch == "{":
                if not in_regex:
                    raise self.fail("'{' inside a variable name", i)
                depth += 1
            elif ch == "}":
                if depth == 0:
                    return i
                depth -= 1
            i += 1
        raise self.fail(
            f"unbalanced braces: '{{' at position {open_pos - self.offset} is never closed"
        )

    def _tail_name(self, value: str, pos: int) -> str:
        if not value.endswith("}") or value.count("{") != 1:
            raise self.fail("'{*name}' must be a whole segment", pos)
        return self._register(value[2:-1], pos)

    def _register(self, name: str, pos: int) -> str:
        if not _is_name(name):
            raise self.fail(f"bad variable name {name!r}", pos)
        if name in self.names:
            raise self.fail(f"variable {name!r} is captured twice", pos)
        self.names.add(name)
        return name

    def _segment(self, value: str, pos: int) -> list[str | _Var]:
        """Split a segment into pieces: ``'=x'`` literals, ``'*'``, ``'?'`` and variables."""
        pieces: list[str | _Var] = []
        i = 0
        while i < len(value):
            ch = value[i]
            if ch == "{":
                end = self._close(value, i)
                body = value[i + 1 : end]
                if body.startswith("*"):
                    raise self.fail("'{*name}' must be a whole segment", pos + i)
                name, colon, constraint = body.partition(":")
                self._register(name, pos + i)
                if colon and constraint == "":
                    raise self.fail(f"variable {name!r} has an empty regex", pos + i)
                pieces.append(_Var(name, constraint if colon else None))
                i = end + 1
                continue
            pieces.append(ch if ch in "*?" else "=" + ch)
            i += 1
        return pieces

    @staticmethod
    def _close(value: str, open_pos: int) -> int:
        depth = 0
        i = open_pos + 1
        in_regex = False
        while True:
            ch = value[i]
            if in_regex and ch == "\\":
                i += 2
                continue
            if ch == ":":
                in_regex = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                if depth == 0:
                    return i
                depth -= 1
            i += 1

    def _inline(self, pieces: list[str | _Var], groups: list[tuple[str, str]]) -> str:
        if len(pieces) == 1 and isinstance(pieces[0], _Var):
            group = self._group()
            groups.append((group, pieces[0].name))
            return f"(?P<{group}>{_ANY_SEGMENT})"
        if pieces == ["*"]:
            return _ANY_SEGMENT  # a lone '*' needs at least one character
        out: list[str] = []
        for piece in pieces:
            if isinstance(piece, _Var):
                group = self._group()
                groups.append((group, piece.name))
                out.append(f"(?P<{group}>[^/]*)")
            else:
                out.append(self._wild(piece))
        if all(isinstance(p, _Var) or p == "*" for p in pieces):
            # Every piece may be empty, but the segment itself must exist.
            return "(?=[^/])" + "".join(out)
        return "".join(out)

    @staticmethod
    def _wild(piece: str) -> str:
        if piece == "*":
            return "[^/]*"
        if piece == "?":
            return "[^/]"
        return re.escape(piece[1:])

    def _segment_regex(
        self, pieces: list[str | _Var], pos: int
    ) -> tuple[re.Pattern[str], tuple[tuple[str, str], ...]]:
        out: list[str] = []
        names: list[tuple[str, str]] = []
        for piece in pieces:
            if not isinstance(piece, _Var):
                out.append(self._wild(piece))
                continue
            group = self._group()
            names.append((group, piece.name))
            if piece.constraint is None:
                out.append(f"(?P<{group}>[^/]*)")
                continue
            try:
                compiled = re.compile(piece.constraint)
            except re.error as exc:
                raise self.fail(
                    f"bad regex in {{{piece.name}:{piece.constraint}}}: {exc}", pos
                ) from exc
            if compiled.groups:
                raise self.fail(
                    f"capturing groups are not allowed in {{{piece.name}:{piece.constraint}}}; "
                    "use (?:...)",
                    pos,
                )
            out.append(f"(?P<{group}>{piece.constraint})")
        return re.compile("".join(out)), tuple(names)
