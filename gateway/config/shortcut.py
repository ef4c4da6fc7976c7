"""One predicate or filter entry of a route, as written, to its definition.

SCG accepts two spellings of the same thing:

- shortcut: ``Name=value1, value2`` — the name runs to the first ``=``, the rest is split on
  commas and the values are mapped to argument names by the factory's ``shortcut_fields`` and
  ``shortcut_type`` (a name with no ``=``, such as ``PreserveHostHeader``, has no arguments);
- expanded: ``{name: Name, args: {field: value, list.0: value, nested.key: value}}``.

Both come out as the same ``PredicateDefinition``/``FilterDefinition`` with normalised args, so
everything after this point sees one shape. Names are case-sensitive, as in SCG; an unknown name
is reported with the close matches, and an SCG factory meshgate refuses with the reason
(``gateway.config.refused``).

Shortcut values are split as SCG's ``tokenizeToStringArray`` splits them: on commas, trimmed,
and with empty tokens dropped — so SCG's documented
``RewriteResponseHeader=X-Response-Red, , password=[^&]+, password=***`` has three values.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from gateway.config.args import (
    ShortcutType,
    normalize_expanded,
    normalize_shortcut,
    split_shortcut,
)
from gateway.config.refused import refusal
from gateway.config.schema import FilterDefinition, PredicateDefinition
from gateway.errors import ConfigError


class ShortcutSpec(Protocol):
    """What parsing needs from a factory: how positional shortcut values map to names.
    ``gateway.extension``'s ``PredicateFactory`` and ``FilterFactory`` both fit, structurally,
    so config (the bottom layer) never imports them."""

    @property
    def shortcut_fields(self) -> tuple[str, ...]: ...

    @property
    def shortcut_type(self) -> ShortcutType: ...


_EXPANDED_KEYS = ("name", "args")


def suggest(name: str, known: Iterable[str], limit: int = 3) -> list[str]:
    """Known names close to ``name``; a case-only difference always comes first."""
    candidates = list(known)
    folded = [c for c in candidates if c.lower() == name.lower() and c != name]
    close = difflib.get_close_matches(name, candidates, n=limit, cutoff=0.6)
    return (folded + [c for c in close if c not in folded])[:limit]


def unknown_name(kind: str, name: str, known: Iterable[str]) -> ConfigError:
    """``unknown filter 'StripPrefx' (did you mean StripPrefix?)``; for an SCG factory meshgate
    refuses, ``SaveSession is not supported: <why>``."""
    refused = refusal(kind, name)
    if refused is not None:
        return ConfigError(refused)
    matches = suggest(name, known)
    hint = f" (did you mean {' or '.join(matches)}?)" if matches else ""
    return ConfigError(f"unknown {kind} {name!r}{hint}")


def unknown_key(key: str, allowed: Sequence[str], what: str = "key") -> ConfigError:
    """``unknown key 'ID' (did you mean id?); allowed: id, uri, predicates, ...``"""
    matches = suggest(key, allowed, limit=1)
    hint = f" (did you mean {matches[0]}?)" if matches else ""
    return ConfigError(f"unknown {what} {key!r}{hint}; allowed: {', '.join(allowed)}")


def entry_name(entry: object) -> str | None:
    """The name an entry gives itself, if it can be read at all: for error locations, so a
    broken entry is still called by its name."""
    if isinstance(entry, str):
        name = entry.split("=", 1)[0].strip()
        return name or None
    if isinstance(entry, Mapping):
        value = entry.get("name")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def shortcut_values(text: str) -> list[str]:
    """The values of a shortcut's argument text, as SCG's ``tokenizeToStringArray(text, ",")``
    gives them: trimmed, empty tokens dropped (``a, , b`` is two values, not three)."""
    return [value for value in split_shortcut(text) if value]


def written_args(entry: object) -> dict[str, Any]:
    """The arguments of an entry as SCG's ``RouteDefinition`` keeps them: a shortcut's values
    under generated keys, an expanded entry's ``args`` as written."""
    if isinstance(entry, str):
        _, sep, rest = entry.partition("=")
        values = shortcut_values(rest) if sep else []
        return {f"{_GENKEY}{index}": value for index, value in enumerate(values)}
    if isinstance(entry, Mapping) and isinstance(entry.get("args"), Mapping):
        return {str(key): value for key, value in entry["args"].items()}
    return {}


def parse_entry(
    entry: object, factories: Mapping[str, ShortcutSpec], kind: str
) -> tuple[str, dict[str, Any]]:
    """``(name, normalised args)`` of one entry; ``kind`` ("predicate"/"filter") is for
    messages. Raises ``ConfigError`` without a location: the caller knows where the entry is."""
    if isinstance(entry, str):
        return _parse_shortcut(entry, factories, kind)
    if isinstance(entry, Mapping):
        return _parse_expanded(entry, factories, kind)
    raise ConfigError(
        f"expected a {kind} as 'Name=arguments' or as a mapping with name and args, "
        f"got {describe_value(entry)}"
    )


def parse_predicate(entry: object, factories: Mapping[str, ShortcutSpec]) -> PredicateDefinition:
    name, args = parse_entry(entry, factories, "predicate")
    return PredicateDefinition(name=name, args=args, written=written_args(entry))


def parse_filter(entry: object, factories: Mapping[str, ShortcutSpec]) -> FilterDefinition:
    name, args = parse_entry(entry, factories, "filter")
    return FilterDefinition(name=name, args=args, written=written_args(entry))


def _lookup(name: str, factories: Mapping[str, ShortcutSpec], kind: str) -> ShortcutSpec:
    factory = factories.get(name)
    if factory is None:
        raise unknown_name(kind, name, factories)
    return factory


def _parse_shortcut(
    text: str, factories: Mapping[str, ShortcutSpec], kind: str
) -> tuple[str, dict[str, Any]]:
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not name:
        raise ConfigError(f"{kind} {text!r} has no name before '='")
    factory = _lookup(name, factories, kind)
    values = shortcut_values(rest) if sep else []
    return name, normalize_shortcut(values, factory.shortcut_fields, factory.shortcut_type)


def _parse_expanded(
    entry: Mapping[Any, Any], factories: Mapping[str, ShortcutSpec], kind: str
) -> tuple[str, dict[str, Any]]:
    unknown = [str(key) for key in entry if key not in _EXPANDED_KEYS]
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(map(repr, unknown))} in expanded {kind} "
            f"(allowed: {', '.join(_EXPANDED_KEYS)})"
        )
    raw_name = entry.get("name")
    if not isinstance(raw_name, str) or not raw_name.strip():
        raise ConfigError(f"expanded {kind} needs a name, got {describe_value(raw_name)}")
    name = raw_name.strip()
    factory = _lookup(name, factories, kind)
    raw_args = entry.get("args")
    if raw_args is None:
        return name, {}
    if not isinstance(raw_args, Mapping):
        raise ConfigError(
            f"args must be a mapping of argument names to values, got {describe_value(raw_args)}"
        )
    return name, _positional_keys(normalize_expanded(raw_args), factory)


_GENKEY = "_genkey_"


def _positional_keys(args: dict[str, Any], factory: ShortcutSpec) -> dict[str, Any]:
    """SCG's generated keys (``_genkey_0``, ``_genkey_1``: what its actuator emits for a shortcut
    definition) are positional: they map to the shortcut fields exactly as the shortcut form's
    values do."""
    generated = sorted(
        (key for key in args if key.startswith(_GENKEY) and key[len(_GENKEY) :].isdigit()),
        key=lambda key: int(key[len(_GENKEY) :]),
    )
    if not generated:
        return args
    values = [str(args.pop(key)) for key in generated]
    named = normalize_shortcut(values, factory.shortcut_fields, factory.shortcut_type)
    clash = sorted(set(named) & set(args))
    if clash:
        raise ConfigError(
            f"argument(s) {', '.join(map(repr, clash))} given both by name and position"
        )
    return {**named, **args}


def describe_value(value: object) -> str:
    """A short, user-facing description of a YAML value of the wrong type."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__
