"""Arguments of a predicate or filter: SCG's shortcut and expanded forms normalised to one shape,
and typed accessors that fail with the argument's name in the message.

Shortcut form ``Path=/red/{segment},/blue/**`` yields positional values that the factory's
``shortcut_fields`` and ``shortcut_type`` map to names, exactly as SCG's ``ShortcutConfigurable``
does. Expanded form ``{name: Path, args: {patterns.0: /red, patterns.1: /blue}}`` may use indexed
keys (``x.0``) or dotted keys (``backoff.factor``); both fold into lists and nested mappings.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any, NoReturn

from gateway.errors import ConfigError
from resilience.durations import parse_duration

_MISSING: Any = object()


class ShortcutType(Enum):
    DEFAULT = "default"  # values map to the fields in order
    GATHER_LIST = "gather_list"  # all values form one list (the single field)
    GATHER_LIST_TAIL_FLAG = "gather_list_tail_flag"  # a list, then an optional boolean flag


def split_shortcut(text: str) -> list[str]:
    """SCG splits the shortcut argument text on commas and trims each part."""
    if text.strip() == "":
        return []
    return [part.strip() for part in text.split(",")]


def normalize_shortcut(
    values: list[str], fields: tuple[str, ...], kind: ShortcutType
) -> dict[str, Any]:
    if kind is ShortcutType.GATHER_LIST:
        return {fields[0]: list(values)} if fields else {}
    if kind is ShortcutType.GATHER_LIST_TAIL_FLAG:
        items = list(values)
        out: dict[str, Any] = {}
        if items and items[-1].lower() in ("true", "false") and len(fields) > 1:
            out[fields[1]] = items.pop()
        out[fields[0]] = items
        return out
    if len(values) > len(fields):
        raise ConfigError(
            f"takes at most {len(fields)} argument(s) ({', '.join(fields) or 'none'}), "
            f"got {len(values)}: {', '.join(values)!r}"
        )
    return dict(zip(fields, values, strict=False))


_INDEX = re.compile(r"^\d+$")


def normalize_expanded(args: Mapping[Any, Any]) -> dict[str, Any]:
    """Fold ``a.0``/``a.1`` into lists and ``a.b`` into nested dicts; keep plain keys."""
    out: dict[str, Any] = {}
    for raw_key, value in args.items():
        key = str(raw_key)
        parts = key.split(".")
        node: dict[str, Any] = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"argument {key!r} clashes with a plain value for {part!r}")
            node = child
        leaf = parts[-1]
        if isinstance(value, Mapping):
            value = normalize_expanded(value)
        node[leaf] = value
    # Only nested keys fold into lists: the top level always names arguments.
    return {key: _lists_from_indexed(value) for key, value in out.items()}


def _lists_from_indexed(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _lists_from_indexed(v) for k, v in node.items()}
    if converted and all(_INDEX.match(k) for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB|TB)?\s*$", re.IGNORECASE)
_SIZE_FACTOR = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}


def parse_data_size(value: Any) -> int:
    """Spring's DataSize: ``5MB``, ``16000B``, ``10KB`` or a bare number of bytes."""
    if isinstance(value, bool):
        raise ValueError(f"not a data size: {value!r}")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a data size: {value!r} (use e.g. 5MB, 16000B)")
    return int(match.group(1)) * _SIZE_FACTOR[(match.group(2) or "b").lower()]


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"not a boolean: {value!r} (use true or false)")


class Args:
    """Typed, checked access to one predicate's or filter's normalised arguments.

    Every accessor records the name it read; ``finish()`` rejects arguments nobody read, so a
    misspelt argument name is an error rather than a silently ignored setting.
    """

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)
        self._read: set[str] = set()

    @property
    def values(self) -> Mapping[str, Any]:
        return self._values

    def has(self, name: builtins.str) -> bool:
        return name in self._values and self._values[name] is not None

    def fail(self, name: builtins.str, reason: builtins.str) -> NoReturn:
        raise ConfigError(f"argument {name!r}: {reason}")

    def raw(self, name: builtins.str, default: Any = _MISSING) -> Any:
        self._read.add(name)
        value = self._values.get(name)
        if value is None or (isinstance(value, str) and value == "" and default is not _MISSING):
            if default is _MISSING:
                raise ConfigError(f"missing required argument {name!r}")
            return default
        return value

    def str(self, name: builtins.str, default: Any = _MISSING) -> Any:
        value = self.raw(name, default)
        if value is default:
            return value
        if isinstance(value, Mapping | list):
            self.fail(name, f"expected a single value, got {value!r}")
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def int(self, name: builtins.str, default: Any = _MISSING) -> Any:
        value = self.raw(name, default)
        if value is default:
            return value
        try:
            if isinstance(value, bool):
                raise ValueError
            return int(str(value).strip())
        except ValueError:
            self.fail(name, f"expected an integer, got {value!r}")

    def float(self, name: builtins.str, default: Any = _MISSING) -> Any:
        value = self.raw(name, default)
        if value is default:
            return value
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(str(value).strip())
        except ValueError:
            self.fail(name, f"expected a number, got {value!r}")

    def bool(self, name: builtins.str, default: Any = _MISSING) -> Any:
        value = self.raw(name, default)
        if value is default:
            return value
        try:
            return parse_bool(value)
        except ValueError as exc:
            self.fail(name, str(exc))

    def str_list(self, name: builtins.str, default: Any = _MISSING) -> Any:
        """A list of strings; a single string is split on commas (SCG's list conversion)."""
        value = self.raw(name, default)
        if value is default:
            return value
        if isinstance(value, list):
            items = [str(v).strip() for v in value]
        elif isinstance(value, Mapping):
            self.fail(name, f"expected a list, got {value!r}")
        else:
            items = split_shortcut(str(value))
        return [item for item in items if item != ""]

    def duration(
        self, name: builtins.str, default: Any = _MISSING, default_unit: builtins.str = "ms"
    ) -> Any:
        value = self.raw(name, default)
        if value is default:
            return value
        try:
            return parse_duration(value, default_unit)
        except ValueError as exc:
            self.fail(name, str(exc))

    def data_size(self, name: builtins.str, default: Any = _MISSING) -> Any:
        value = self.raw(name, default)
        if value is default:
            return value
        try:
            return parse_data_size(value)
        except ValueError as exc:
            self.fail(name, str(exc))

    def mapping(self, name: builtins.str, default: Any = _MISSING) -> Any:
        value = self.raw(name, default)
        if value is default:
            return value
        if not isinstance(value, Mapping):
            self.fail(name, f"expected a mapping, got {value!r}")
        return value

    def finish(self) -> None:
        unknown = sorted(set(self._values) - self._read)
        if unknown:
            raise ConfigError(f"unknown argument(s): {', '.join(unknown)}")
