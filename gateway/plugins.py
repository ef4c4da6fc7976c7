"""Plugin discovery: the predicate and filter factories a gateway runs with, built-ins plus those
third-party distributions register through the ``meshgate.predicates`` / ``meshgate.filters``
entry-point groups.

An entry point names its factory (``AddRequestTimestamp = "my_plugin:ADD_REQUEST_TIMESTAMP"``).
Its object is either the factory itself (a ``PredicateFactory`` / ``FilterFactory``) or a
zero-argument callable returning one, for a plugin that must do work to build it. The rules, all
checked before anything is used, each broken one a ``ConfigError`` naming the entry point:

- the entry-point name is the factory's ``name`` (it is what route files write, and what a
  reader of ``pyproject.toml`` expects to get);
- no plugin name equals a built-in's or another plugin's, ignoring case: a plugin never replaces
  a built-in, and a case-only difference would turn a typo that is reported today
  (``stripPrefix``: did you mean StripPrefix?) into a silently different filter;
- the entry point imports, and gives a factory of its group's kind with well-formed fields.

All problems are reported together (``ConfigErrors``), as a route file's are.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any, Protocol, TypeVar

from gateway.config.errors import ConfigErrors
from gateway.errors import ConfigError
from gateway.extension import FilterFactory, PredicateFactory, ShortcutType
from gateway.filters.catalog import builtin_filters
from gateway.predicates.catalog import builtin_predicates

__all__ = [
    "FILTERS_GROUP",
    "PREDICATES_GROUP",
    "EntryPointSource",
    "Factories",
    "factories",
]

PREDICATES_GROUP = "meshgate.predicates"
FILTERS_GROUP = "meshgate.filters"

log = logging.getLogger("meshgate.plugins")

# What a route file can write before ``=`` in the shortcut form (SCG's names are all like this).
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class EntryPointSource(Protocol):
    """``importlib.metadata.entry_points`` as used here; unit tests pass their own."""

    def __call__(self, *, group: str) -> Iterable[importlib.metadata.EntryPoint]: ...


@dataclass(frozen=True, slots=True)
class Factories:
    """Every factory a route may name, by name. Read-only: the set is fixed at start-up."""

    predicates: Mapping[str, PredicateFactory]
    filters: Mapping[str, FilterFactory]

    @classmethod
    def builtin(cls) -> Factories:
        """The built-ins alone, for callers that must not depend on what is installed."""
        return cls(MappingProxyType(builtin_predicates()), MappingProxyType(builtin_filters()))


def factories(entry_points: EntryPointSource = importlib.metadata.entry_points) -> Factories:
    """Built-ins plus every plugin ``entry_points`` lists. Raises ``ConfigErrors`` (a
    ``ConfigError``) listing every bad entry point; nothing is returned half-loaded."""
    errors: list[ConfigError] = []
    predicates = _load_group(
        PREDICATES_GROUP, "predicate", PredicateFactory, builtin_predicates(), entry_points, errors
    )
    filters = _load_group(
        FILTERS_GROUP, "filter", FilterFactory, builtin_filters(), entry_points, errors
    )
    if errors:
        raise ConfigErrors(errors)
    return Factories(MappingProxyType(predicates), MappingProxyType(filters))


_F = TypeVar("_F", PredicateFactory, FilterFactory)


def _load_group(
    group: str,
    kind: str,
    factory_type: type[_F],
    builtins: dict[str, _F],
    entry_points: EntryPointSource,
    errors: list[ConfigError],
) -> dict[str, _F]:
    loaded = dict(builtins)
    # Lower-cased name -> who holds it, for the clash message.
    taken = {name.lower(): f"the built-in {kind} {name!r}" for name in builtins}
    # Sorted so that which of two clashing plugins is reported does not depend on sys.path order.
    found = sorted(entry_points(group=group), key=lambda ep: (ep.name, ep.value, _dist(ep)))
    for ep in found:
        where = _where(ep)
        owner = taken.get(ep.name.lower())
        if owner is not None:
            # Checked before importing: a clashing plugin's code never runs.
            errors.append(
                ConfigError(
                    f"{kind} name {ep.name!r} clashes with {owner}; a plugin cannot replace "
                    "another factory (names compare ignoring case): rename it",
                    where,
                )
            )
            continue
        taken[ep.name.lower()] = f"{kind} {ep.name!r} of {where}"
        try:
            factory = _factory(ep, kind, factory_type)
        except ConfigError as exc:
            errors.append(exc.at(where))
            continue
        loaded[factory.name] = factory
        log.info("loaded %s %s from %s (%s)", kind, factory.name, _dist(ep), ep.value)
    return loaded


def _factory(ep: importlib.metadata.EntryPoint, kind: str, factory_type: type[_F]) -> _F:
    expected = f"a {factory_type.__name__} or a zero-argument callable returning one"
    if not _NAME.match(ep.name):
        raise ConfigError(f"{ep.name!r} is not a {kind} name (letters, digits and _)")
    try:
        obj: Any = ep.load()
    except Exception as exc:  # whatever the plugin's import raises is its mistake, not ours
        raise ConfigError(f"cannot be imported: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, PredicateFactory | FilterFactory) and callable(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise ConfigError(
                f"calling {ep.value} failed ({expected} is expected): {type(exc).__name__}: {exc}"
            ) from exc
    if isinstance(obj, PredicateFactory | FilterFactory) and not isinstance(obj, factory_type):
        other = FILTERS_GROUP if factory_type is PredicateFactory else PREDICATES_GROUP
        raise ConfigError(f"gives a {type(obj).__name__}, not {expected} (register it in {other})")
    if not isinstance(obj, factory_type):
        raise ConfigError(f"gives {_kind_of(obj)}, not {expected}")
    _check_fields(obj, ep.name)
    return obj


def _check_fields(factory: PredicateFactory | FilterFactory, entry_name: str) -> None:
    """The dataclass does not check its fields, and a plugin is not type-checked with us: a bad
    field found here is a start-up error instead of a crash at the first route using it."""
    if factory.name != entry_name:
        raise ConfigError(
            f"the entry point is named {entry_name!r} but its factory is named "
            f"{factory.name!r}; they must be the same"
        )
    fields = factory.shortcut_fields
    if not isinstance(fields, tuple) or not all(isinstance(f, str) and f for f in fields):
        raise ConfigError(f"shortcut_fields must be a tuple of names, got {fields!r}")
    if not isinstance(factory.shortcut_type, ShortcutType):
        raise ConfigError(f"shortcut_type must be a ShortcutType, got {factory.shortcut_type!r}")
    if not callable(factory.build):
        raise ConfigError(f"build must be callable, got {factory.build!r}")


def _where(ep: importlib.metadata.EntryPoint) -> str:
    return f"entry point {ep.group}:{ep.name} ({_origin(ep)})"


def _origin(ep: importlib.metadata.EntryPoint) -> str:
    return f"{ep.value} from {_dist(ep)}"


def _dist(ep: importlib.metadata.EntryPoint) -> str:
    # ``dist`` is set on entry points read from an installed distribution, None on hand-made ones.
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"


def _kind_of(obj: object) -> str:
    if isinstance(obj, ModuleType):
        return f"the module {obj.__name__} (name an attribute: module:attr)"
    if isinstance(obj, type):
        return f"the class {obj.__module__}.{obj.__qualname__}"
    return f"a {type(obj).__module__}.{type(obj).__qualname__}"
