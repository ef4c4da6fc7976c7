"""Java regular expressions and replacement strings, translated to Python's ``re``.

SCG configs are written for ``java.util.regex``: named groups are ``(?<name>…)``, replacements
use ``$1``/``${name}``, and ``\\w``/``\\d``/``\\s`` are ASCII-only by default. The translation walks
the pattern once, rewriting what differs and refusing (``ValueError``) what Python cannot
express faithfully, so a config never silently matches something other than what SCG would.
Possessive quantifiers and atomic groups need no work: Python 3.11's ``re`` has both.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["compile_java_regex", "compile_replacement", "translate_java_regex"]

# POSIX classes Java accepts as \p{Name}: contents usable both inside and outside a [...] set.
_POSIX = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7f",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "!-/:-@\\[-`{-~",
    "Graph": "!-~",
    "Print": " -~",
    "Blank": " \\t",
    "Cntrl": "\\x00-\\x1f\\x7f",
    "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0b\\f\\r",
}
# Java escapes with no Python equivalent, as set contents.
_HSPACE = " \\t\\xa0\\u1680\\u180e\\u2000-\\u200a\\u202f\\u205f\\u3000"
_VSPACE = "\\n\\x0b\\f\\r\\x85\\u2028\\u2029"
_JAVA_FLAGS = {"i": "i", "m": "m", "s": "s", "x": "x", "u": "", "U": "", "d": ""}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_FLAG_GROUP = re.compile(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])")
_OCTAL = re.compile(r"[0-3]?[0-7]{1,2}")


def compile_java_regex(pattern: str) -> re.Pattern[str]:
    """Compile a Java regex. Raises ``ValueError`` naming the problem for anything invalid or
    not translatable."""
    translated, unicode = translate_java_regex(pattern)
    try:
        return re.compile(translated, 0 if unicode else re.ASCII)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


def translate_java_regex(pattern: str) -> tuple[str, bool]:
    """Return the Python pattern text and whether Java's UNICODE flags (``u``/``U``) were set
    (without them Java's classes and case folding are ASCII-only, so we compile with re.ASCII)."""
    return _Translator(pattern).run()


class _Translator:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.out: list[str] = []
        self.unicode = False
        # end of the leading run of bare flag groups such as (?i)(?s)
        self.flags_end = 0

    def fail(self, reason: str) -> ValueError:
        return ValueError(f"regular expression {self.p!r}: {reason} (at index {self.i})")

    def run(self) -> tuple[str, bool]:
        p, n = self.p, len(self.p)
        in_class = False
        class_body_start = 0
        while self.i < n:
            c = p[self.i]
            if c == "\\":
                self.out.append(self.escape(in_class))
                continue
            if in_class:
                if c == "]" and self.i > class_body_start:
                    in_class = False
                elif c == "[":
                    raise self.fail("nested character classes (union) are not supported")
                elif c == "&" and p.startswith("&&", self.i):
                    raise self.fail("character class intersection (&&) is not supported")
                elif c in "|~":
                    # literal in Java; escaped so Python's set-operation warnings never fire
                    c = "\\" + c
                self.out.append(c)
                self.i += 1
                continue
            if c == "[":
                in_class = True
                self.i += 1
                self.out.append("[")
                if self.i < n and p[self.i] == "^":
                    self.out.append("^")
                    self.i += 1
                class_body_start = self.i
                continue
            if c == "(" and p.startswith("(?", self.i):
                self.group()
                continue
            self.out.append(c)
            self.i += 1
        if in_class:
            raise self.fail("unclosed character class")
        return "".join(self.out), self.unicode

    def group(self) -> None:
        p = self.p
        rest = p[self.i + 2 : self.i + 3]
        if rest == "<" and p[self.i + 3 : self.i + 4] not in ("=", "!"):
            end = p.find(">", self.i + 3)
            name = p[self.i + 3 : end] if end != -1 else ""
            if end == -1 or not _NAME.fullmatch(name):
                raise self.fail("bad group name (Java names are a letter then letters/digits)")
            self.out.append(f"(?P<{name}>")
            self.i = end + 1
            return
        match = _FLAG_GROUP.match(p, self.i)
        if match is None:
            # lookaround, atomic group, non-capturing group: same syntax in both languages
            self.out.append("(?")
            self.i += 2
            return
        on, off, closer = match.group(1), match.group(2) or "", match.group(3)
        for flag in on + off:
            if flag not in _JAVA_FLAGS:
                raise self.fail(f"unknown inline flag {flag!r}")
        if "u" in on or "U" in on:
            self.unicode = True
        py_on = "".join(_JAVA_FLAGS[f] for f in on)
        py_off = "".join(_JAVA_FLAGS[f] for f in off)
        if closer == ")":
            if self.i != self.flags_end:
                # Java applies a bare (?i) from there on; Python only allows it at the start
                raise self.fail("inline flags are only supported at the start; use (?i:...)")
            if py_off:
                raise self.fail("turning flags off is only supported scoped, as in (?-i:...)")
            self.flags_end = match.end()
        if not py_on and not py_off:
            self.out.append("(?:" if closer == ":" else "")
        else:
            self.out.append(f"(?{py_on}{'-' + py_off if py_off else ''}{closer}")
        self.i = match.end()

    def escape(self, in_class: bool) -> str:
        p, i = self.p, self.i
        if i + 1 >= len(p):
            raise self.fail("trailing backslash")
        c = p[i + 1]
        self.i = i + 2
        if c == "Q":
            end = p.find("\\E", self.i)
            literal = p[self.i :] if end == -1 else p[self.i : end]
            self.i = len(p) if end == -1 else end + 2
            return "".join("\\" + ch if not ch.isalnum() else ch for ch in literal)
        if c == "E":
            return ""
        if c in "pP":
            return self.posix(c == "P", in_class)
        if c in "hvHV":
            body = _HSPACE if c in "hH" else _VSPACE
            if in_class and c.isupper():
                raise self.fail(f"\\{c} inside a character class is not supported")
            if in_class:
                return body
            return f"[{'^' if c.isupper() else ''}{body}]"
        if c == "R" and not in_class:
            return f"(?:\\r\\n|[{_VSPACE}])"
        if c == "z" and not in_class:
            return "\\Z"
        if c == "Z" and not in_class:
            return "(?=\\n?\\Z)"
        if c == "e":
            return "\\x1b"
        if c == "c" and self.i < len(p):
            self.i += 1
            return f"\\x{ord(p[self.i - 1]) ^ 64:02x}"
        if c == "0":
            digits = _OCTAL.match(p, self.i)
            if digits is None:
                raise self.fail("\\0 must be followed by octal digits")
            self.i = digits.end()
            return f"\\x{int(digits.group(), 8):02x}"
        if c == "x" and p.startswith("{", self.i):
            end = p.find("}", self.i)
            if end == -1:
                raise self.fail("unclosed \\x{...}")
            code = int(p[self.i + 1 : end], 16)
            self.i = end + 1
            return f"\\U{code:08x}"
        if c == "k" and p.startswith("<", self.i):
            end = p.find(">", self.i)
            name = p[self.i + 1 : end] if end != -1 else ""
            if not _NAME.fullmatch(name):
                raise self.fail("bad named back-reference")
            self.i = end + 1
            return f"(?P={name})"
        if c in "GXRzZ" or (c == "b" and p.startswith("{", self.i)):
            raise self.fail(f"\\{c} is not supported")
        return "\\" + c

    def posix(self, negated: bool, in_class: bool) -> str:
        p = self.p
        if p.startswith("{", self.i):
            end = p.find("}", self.i)
            name = p[self.i + 1 : end] if end != -1 else ""
            self.i = end + 1 if end != -1 else len(p)
        else:
            name = p[self.i : self.i + 1]
            self.i += 1
        name = name.removeprefix("Is")
        body = _POSIX.get(name)
        if body is None:
            raise self.fail(f"\\p{{{name}}} has no Python equivalent")
        if in_class:
            if negated:
                raise self.fail("\\P{...} inside a character class is not supported")
            return body
        return f"[{'^' if negated else ''}{body}]"


_Piece = str | int


def compile_replacement(
    replacement: str, pattern: re.Pattern[str]
) -> Callable[[re.Match[str]], str]:
    """Compile a Java ``Matcher.replaceAll`` replacement for ``pattern.sub``.

    ``$n``/``${name}`` are group references, ``\\x`` is a literal ``x``. SCG first turns ``$\\``
    into ``$`` (YAML cannot hold ``${`` in some places, so configs write ``$\\{name}``); that is
    done here too. A reference to a group the pattern lacks is a ``ValueError``; a group that
    did not take part in the match contributes nothing, as in Java.
    """
    text = replacement.replace("$\\", "$")
    pieces: list[_Piece] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                raise ValueError(f"replacement {replacement!r}: trailing backslash")
            literal.append(text[i + 1])
            i += 2
            continue
        if c != "$":
            literal.append(c)
            i += 1
            continue
        ref, i = _group_ref(text, i + 1, pattern, replacement)
        if literal:
            pieces.append("".join(literal))
            literal = []
        pieces.append(ref)
    if literal:
        pieces.append("".join(literal))
    if all(isinstance(piece, str) for piece in pieces):
        constant = "".join(str(piece) for piece in pieces)
        return lambda _match: constant
    frozen = tuple(pieces)

    def expand(match: re.Match[str]) -> str:
        return "".join(
            piece if isinstance(piece, str) else (match.group(piece) or "") for piece in frozen
        )

    return expand


def _group_ref(text: str, i: int, pattern: re.Pattern[str], replacement: str) -> tuple[_Piece, int]:
    """Parse the reference after a ``$`` at ``i``; Java's rules: ``${name}``, or digits taken
    greedily while the number still names an existing group."""
    if i >= len(text):
        raise ValueError(f"replacement {replacement!r}: '$' at the end names no group")
    if text[i] == "{":
        end = text.find("}", i)
        name = text[i + 1 : end] if end != -1 else ""
        if not _NAME.fullmatch(name):
            raise ValueError(f"replacement {replacement!r}: bad group name in ${{...}}")
        if name not in pattern.groupindex:
            raise ValueError(f"replacement {replacement!r}: the regexp has no group named {name!r}")
        return pattern.groupindex[name], end + 1
    if not text[i].isdigit():
        raise ValueError(
            f"replacement {replacement!r}: '$' must be followed by a group number or {{name}} "
            "(write \\$ for a literal dollar)"
        )
    number = int(text[i])
    if number > pattern.groups:
        raise ValueError(f"replacement {replacement!r}: the regexp has no group {number}")
    i += 1
    while i < len(text) and text[i].isdigit():
        longer = number * 10 + int(text[i])
        if longer > pattern.groups:
            break
        number = longer
        i += 1
    return number, i
