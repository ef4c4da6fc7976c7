"""SCG's ``Host`` predicate patterns: Ant-style globs over dot-separated host labels.

- ``**`` zero or more labels, anywhere: ``**.somehost.org`` matches ``somehost.org``,
  ``www.somehost.org`` and ``a.b.somehost.org``;
- ``*`` zero or more characters within one label (a lone ``*`` is exactly one label), ``?`` one;
- ``{sub}`` captures one label (``{sub}.myhost.org``), ``{sub:regex}`` captures a constrained one;
- anything else is literal. Host names compare case-insensitively (RFC 3986 §3.2.2); captured
  values keep the case the client sent.

The port. SCG matches the raw ``Host`` header, port included, with an ``AntPathMatcher(".")``,
so there ``**.example.org`` does *not* match ``a.example.org:8080`` (the last label becomes
``org:8080``) — a well-known surprise for anyone running on a non-default port. Here a pattern
without a port matches the host name alone, whatever the port; a pattern that names one
(``**.example.org:8080``, ``localhost:{port}``) matches host and port, so configurations that
relied on SCG's port-sensitive behaviour keep working.

A pattern with no wildcard at all is a plain string comparison; one whose labels are plain globs
is a single regex over the host name (a glob never matches a dot); one with ``{var:regex}`` labels
is matched label by label, backtracking over ``**``, so a user regex only ever sees one label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class _Label:
    """One pattern label: a literal (lower-cased), ``**``, or a glob compiled to a regex."""

    literal: str | None = None
    regex: re.Pattern[str] | None = None
    names: tuple[tuple[str, str], ...] = ()  # (regex group, variable name)
    any_labels: bool = False  # ``**``
    # The label as regex text for the whole-host regex; None when it holds a user regex,
    # which could run across a dot there.
    source: str | None = None

    def match(self, label: str, out: dict[str, str]) -> bool:
        if self.literal is not None:
            return label.lower() == self.literal
        assert self.regex is not None
        found = self.regex.fullmatch(label)
        if found is None:
            return False
        for group, name in self.names:
            out[name] = found.group(group)
        return True


_GLOB = re.compile(r"\{(?P<body>(?:\{[^{}]*\}|\\.|[^{}])+)\}|\*|\?", re.DOTALL)


def split_host_port(value: str) -> tuple[str, str | None]:
    """``host[:port]`` → (host, port); ``[v6]:port`` keeps its brackets on the host."""
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        rest = value[end + 1 :]
        return value[: end + 1], (rest[1:] if rest.startswith(":") else None)
    host, colon, port = value.rpartition(":")
    if not colon:
        return value, None
    return host, port


def _split_outside_braces(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and depth:
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced braces: '}' without '{'")
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if depth:
        raise ValueError("unbalanced braces: '{' is never closed")
    parts.append(text[start:])
    return parts


class HostPattern:
    """A parsed host pattern; ``match`` takes the ``Host`` header value as the client sent it."""

    __slots__ = ("_labels", "_literal", "_names", "_port", "_regex", "text")

    text: str
    _labels: tuple[_Label, ...]
    _port: _Label | None
    _literal: str | None
    _regex: re.Pattern[str] | None
    _names: tuple[tuple[str, str], ...]

    def __init__(self, text: str, labels: tuple[_Label, ...], port: _Label | None) -> None:
        self.text = text
        self._labels = labels
        self._port = port
        self._literal = None
        self._regex = None
        self._names = ()
        if port is None and all(label.literal is not None for label in labels):
            self._literal = ".".join(label.literal or "" for label in labels)
        elif all(label.any_labels or label.source is not None for label in labels):
            self._regex = re.compile(_host_regex(labels), re.IGNORECASE | re.DOTALL)
            self._names = tuple(pair for label in labels for pair in label.names)

    def __repr__(self) -> str:
        return f"HostPattern({self.text!r})"

    @classmethod
    def parse(cls, pattern: str) -> HostPattern:
        text = pattern.strip()
        try:
            return cls._parse(text)
        except ValueError as exc:
            raise ValueError(f"invalid host pattern {pattern!r}: {exc}") from exc

    @classmethod
    def _parse(cls, text: str) -> HostPattern:
        if text == "":
            raise ValueError("empty pattern")
        names: set[str] = set()
        host_text, port_text = text, None
        if not text.startswith("["):
            parts = _split_outside_braces(text, ":")
            if len(parts) > 2:
                raise ValueError("more than one ':'")
            if len(parts) == 2:
                host_text, port_text = parts
        else:
            host_text, port_text = split_host_port(text)
        if port_text is not None and port_text == "":
            raise ValueError("empty port after ':'")
        host_text = host_text.removesuffix(".")
        labels = tuple(
            _compile_label(part, names) for part in _split_outside_braces(host_text, ".")
        )
        port = _compile_label(port_text, names) if port_text is not None else None
        if port is not None and port.any_labels:
            raise ValueError("'**' cannot stand for a port")
        return cls(text, labels, port)

    def match(self, host: str) -> dict[str, str] | None:
        """Captured variables when the ``Host`` header value ``host`` matches, else None."""
        name, port = split_host_port(host.strip())
        name = name.removesuffix(".")
        if not name:
            return None
        if self._literal is not None:
            return {} if name.lower() == self._literal else None
        out: dict[str, str] = {}
        if self._port is not None and (port is None or not self._port.match(port, out)):
            return None
        if self._regex is not None:
            found = self._regex.fullmatch(name)
            if found is None:
                return None
            for group, var in self._names:
                out[var] = found.group(group)
            return out
        labels = name.split(".")
        if "" in labels or not _match_labels(self._labels, 0, labels, 0, out):
            return None
        return out


def _host_regex(labels: tuple[_Label, ...]) -> str:
    """Join label regexes with ``\\.``; ``**`` becomes "any labels" and owns one adjacent dot."""
    # ``**.**`` is ``**``.
    labels = tuple(
        label
        for i, label in enumerate(labels)
        if not (label.any_labels and i and labels[i - 1].any_labels)
    )
    out: list[str] = []
    after_any = False
    for index, label in enumerate(labels):
        if label.any_labels:
            if index == len(labels) - 1:
                out.append(r"(?:\.[^.]+)*" if index else r"(?:[^.]+(?:\.[^.]+)*)?")
            else:
                # Lazy: like AntPathMatcher, ``**`` takes the fewest labels that still match.
                out.append((r"\." if index else "") + r"(?:[^.]+\.)*?")
            after_any = True
            continue
        if index and not after_any:
            out.append(r"\.")
        out.append(label.source or "")
        after_any = False
    return "".join(out)


def _match_labels(
    pattern: tuple[_Label, ...], pi: int, labels: list[str], li: int, out: dict[str, str]
) -> bool:
    """Ant-style matching: ``**`` tries every count of labels, shortest first."""
    while pi < len(pattern):
        label = pattern[pi]
        if label.any_labels:
            while pi + 1 < len(pattern) and pattern[pi + 1].any_labels:
                pi += 1
            if pi + 1 == len(pattern):
                return True
            return any(
                _match_labels(pattern, pi + 1, labels, start, out)
                for start in range(li, len(labels) + 1)
            )
        if li >= len(labels) or not label.match(labels[li], out):
            return False
        pi += 1
        li += 1
    return li == len(labels)


def _compile_label(text: str, names: set[str]) -> _Label:
    if text == "":
        raise ValueError("empty label (two dots in a row?)")
    if text == "**":
        return _Label(any_labels=True)
    pieces: list[str] = []
    groups: list[tuple[str, str]] = []
    constrained = False
    pos = 0
    for found in _GLOB.finditer(text):
        pieces.append(re.escape(text[pos : found.start()]))
        pos = found.end()
        token = found.group(0)
        if token == "*":
            pieces.append("[^.]*")
        elif token == "?":
            pieces.append("[^.]")
        else:
            name, colon, constraint = found.group("body").partition(":")
            if not name or name in names or "{" in name:
                raise ValueError(f"bad or repeated variable name {name!r}")
            names.add(name)
            group = f"g{len(names)}"
            groups.append((group, name))
            constrained = constrained or bool(colon)
            pieces.append(f"(?P<{group}>{constraint})" if colon else f"(?P<{group}>[^.]*)")
    pieces.append(re.escape(text[pos:]))
    if not groups and "*" not in text and "?" not in text:
        return _Label(literal=text.lower(), source=re.escape(text.lower()))
    try:
        regex = re.compile("".join(pieces), re.IGNORECASE | re.DOTALL)
    except re.error as exc:
        raise ValueError(f"bad regex in {text!r}: {exc}") from exc
    if regex.groups != len(groups):
        raise ValueError(f"capturing groups are not allowed in {text!r}; use (?:...)")
    # A label is never empty, even when every piece of its glob may be.
    source = None if constrained else "(?=[^.])" + "".join(pieces)
    return _Label(regex=regex, names=tuple(groups), source=source)
