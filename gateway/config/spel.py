"""The part of Spring's expression language (SpEL) SCG's discovery locator is configured in.

SCG evaluates ``include-expression``, ``url-expression`` and every argument of the locator's
``predicates``/``filters`` as SpEL against the discovered service instance. Its documentation
only ever shows a few forms — ``'lb://'+serviceId``, ``'/'+serviceId+'/**'``,
``metadata['edge'] == 'true'``, ``true`` — and those are what this reads: quoted strings,
``true``/``false``/``null``, the instance's properties (``serviceId``, ``host``, ``port``,
``scheme``, ``secure``, ``instanceId``, ``uri``), ``metadata['key']``, ``+`` (concatenation),
``==``/``!=``, ``and``/``or``/``!``/``not`` and parentheses. Anything else (method calls, bean
references, type references, ``?:``...) is refused when the document is read, naming the
expression — never evaluated differently from Spring.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.errors import ConfigError

Value = str | bool | int | None
# What an expression sees: the instance's properties by SpEL name, and its metadata.
Scope = Mapping[str, Value]

PROPERTIES = ("serviceId", "host", "port", "scheme", "secure", "instanceId", "uri")
_SUPPORTED = (
    "quoted strings, true/false/null, serviceId/host/port/scheme/secure/instanceId/uri, "
    "metadata['key'], +, ==, !=, and, or, !, and parentheses"
)
_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||[+!()\[\]])"
    r"|(?P<number>\d+)|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled expression: ``evaluate(scope, metadata)``."""

    text: str
    _run: Callable[[Scope, Mapping[str, str]], Value]

    def evaluate(self, scope: Scope, metadata: Mapping[str, str]) -> Value:
        return self._run(scope, metadata)

    def evaluate_text(self, scope: Scope, metadata: Mapping[str, str]) -> str:
        return _text(self._run(scope, metadata))

    def evaluate_bool(self, scope: Scope, metadata: Mapping[str, str]) -> bool:
        value = self._run(scope, metadata)
        # SpEL converts a String result to Boolean ('true' -> true); anything else is false.
        return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _text(value: Value) -> str:
    if value is None:
        return "null"  # SpEL's string concatenation with null
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _unsupported(text, f"unexpected {text[position:].strip()[:12]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


def _unsupported(text: str, why: str) -> ConfigError:
    return ConfigError(
        f"expression {text!r} is not supported ({why}); meshgate reads the SpEL forms SCG's "
        f"documentation shows: {_SUPPORTED}"
    )


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            expected = f"{value!r}" if value is not None else "more"
            raise _unsupported(self.text, f"expected {expected}")
        self.at += 1
        return token

    def is_word(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "word" and token[1].lower() in words

    def parse(self) -> Callable[[Scope, Mapping[str, str]], Value]:
        if not self.tokens:
            raise _unsupported(self.text, "it is empty")
        run = self.disjunction()
        if self.peek() is not None:
            raise _unsupported(self.text, f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return run

    def disjunction(self) -> Callable[[Scope, Mapping[str, str]], Value]:
        left = self.conjunction()
        while self.is_word("or") or self.peek() == ("op", "||"):
            self.take()
            right = self.conjunction()
            left = _or(left, right)
        return left

    def conjunction(self) -> Callable[[Scope, Mapping[str, str]], Value]:
        left = self.negation()
        while self.is_word("and") or self.peek() == ("op", "&&"):
            self.take()
            right = self.negation()
            left = _and(left, right)
        return left

    def negation(self) -> Callable[[Scope, Mapping[str, str]], Value]:
        if self.peek() == ("op", "!") or self.is_word("not"):
            self.take()
            inner = self.negation()
            return lambda scope, meta: not _truth(inner(scope, meta))
        return self.comparison()

    def comparison(self) -> Callable[[Scope, Mapping[str, str]], Value]:
        left = self.concatenation()
        token = self.peek()
        if token in (("op", "=="), ("op", "!=")) or self.is_word("eq", "ne"):
            self.take()
            right = self.concatenation()
            negate = token is not None and token[1].lower() in ("!=", "ne")
            return _compare(left, right, negate)
        return left

    def concatenation(self) -> Callable[[Scope, Mapping[str, str]], Value]:
        parts = [self.primary()]
        while self.peek() == ("op", "+"):
            self.take()
            parts.append(self.primary())
        if len(parts) == 1:
            return parts[0]
        return lambda scope, meta: "".join(_text(part(scope, meta)) for part in parts)

    def primary(self) -> Callable[[Scope, Mapping[str, str]], Value]:
        kind, value = self.take()
        if kind == "string":
            literal = value[1:-1].replace("''", "'")
            return lambda scope, meta: literal
        if kind == "number":
            number = int(value)
            return lambda scope, meta: number
        if value == "(":
            inner = self.disjunction()
            self.take(")")
            return inner
        if kind == "word":
            lowered = value.lower()
            if lowered in ("true", "false"):
                flag = lowered == "true"
                return lambda scope, meta: flag
            if lowered == "null":
                return lambda scope, meta: None
            if value == "metadata":
                if self.peek() != ("op", "["):
                    raise _unsupported(self.text, "metadata is read as metadata['key']")
                self.take("[")
                key_kind, key = self.take()
                if key_kind != "string":
                    raise _unsupported(self.text, "a metadata key must be a quoted string")
                self.take("]")
                name = key[1:-1].replace("''", "'")
                return lambda scope, meta: meta.get(name)
            if value in PROPERTIES:
                return lambda scope, meta: scope.get(value)
            raise _unsupported(self.text, f"unknown name {value!r}")
        raise _unsupported(self.text, f"unexpected {value!r}")


def _truth(value: Value) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _or(
    left: Callable[[Scope, Mapping[str, str]], Value],
    right: Callable[[Scope, Mapping[str, str]], Value],
) -> Callable[[Scope, Mapping[str, str]], Value]:
    return lambda scope, meta: _truth(left(scope, meta)) or _truth(right(scope, meta))


def _and(
    left: Callable[[Scope, Mapping[str, str]], Value],
    right: Callable[[Scope, Mapping[str, str]], Value],
) -> Callable[[Scope, Mapping[str, str]], Value]:
    return lambda scope, meta: _truth(left(scope, meta)) and _truth(right(scope, meta))


def _compare(
    left: Callable[[Scope, Mapping[str, str]], Value],
    right: Callable[[Scope, Mapping[str, str]], Value],
    negate: bool,
) -> Callable[[Scope, Mapping[str, str]], Value]:
    def run(scope: Scope, meta: Mapping[str, str]) -> Value:
        a, b = left(scope, meta), right(scope, meta)
        # SpEL compares a number with its text as different values; so does this.
        equal = type(a) is type(b) and a == b
        return equal != negate

    return run


def compile_expression(text: object) -> Expression:
    """Compile one expression; raises ``ConfigError`` (without a location) for any form
    outside the supported ones."""
    if isinstance(text, bool):
        text = "true" if text else "false"  # YAML reads an unquoted true as a boolean
    if not isinstance(text, str):
        raise ConfigError(f"expected an expression (text), got {type(text).__name__}")
    return Expression(text, _Parser(text).parse())
