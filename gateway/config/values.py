"""The document's raw values — YAML/JSON scalars and lists before they mean anything — taken
the same way by every part of the reader."""

from __future__ import annotations

import re
from typing import Any

from gateway.config.errors import ErrorCollector
from gateway.config.shortcut import describe_value

_INTEGER = re.compile(r"^[+-]?\d+$")


def as_int(value: object) -> int | None:
    """An integer, also written as a string (``port: "8080"``); never a boolean, so ``true``
    is not port 1."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value.strip())
    return None


def as_list(value: object, errors: ErrorCollector, label: str, key: tuple[int, ...]) -> list[Any]:
    """The entries of a list-valued key: none when it is absent, and none (with an error) when
    it is not a list."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    errors.fail(f"must be a list, got {describe_value(value)}", label, key=key)
    return []
