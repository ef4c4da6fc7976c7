"""The README's "Spring Cloud Gateway compatibility" section is complete: every SCG property
meshgate reads, every SCG predicate and filter factory, and every gateway actuator endpoint
has its place there (in that section, not elsewhere in the README)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.config import spring
from gateway.config.refused import REFUSED_FILTERS, REFUSED_PREDICATES
from gateway.filters.catalog import builtin_filters
from gateway.management import shapes
from gateway.management.actuator import BASE
from gateway.predicates.catalog import builtin_predicates

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
HEADING = "## Spring Cloud Gateway compatibility"


def _section(text: str) -> str:
    """The section's text, from its heading to the next ``## `` heading."""
    lines = text.splitlines()
    start = lines.index(HEADING)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start:end])


SECTION = _section(README)
# The per-factory switches (filter.<name>.enabled ...) are documented as patterns.
_SWITCH = re.compile(r"^(filter|predicate|global-filter)\.[a-z-]+\.enabled$")


def _documented_properties() -> list[str]:
    properties = {prop.name for prop in spring.PROPERTIES}
    return sorted(
        name
        for name in set(spring.property_names())
        if name in properties or not _SWITCH.match(name)
    )


def _canonical(name: str) -> str:
    return name.replace("-", "").lower()


def _factories(kebab: tuple[str, ...], pascal: frozenset[str], *known: frozenset[str]) -> list[str]:
    """SCG's factory names: its Pascal-case set, plus each kebab switch name that names a
    factory meshgate has or refuses (a switch like ``rewrite-location`` names none)."""
    by_canonical = {_canonical(name): name for names in (pascal, *known) for name in names}
    found = (by_canonical.get(_canonical(name)) for name in kebab)
    from_kebab = {name for name in found if name is not None}
    return sorted(pascal | from_kebab)


FILTERS = _factories(
    spring.SCG_FILTERS,
    shapes.SCG_FILTERS,
    frozenset(builtin_filters()),
    frozenset(REFUSED_FILTERS),
)
PREDICATES = _factories(
    spring.SCG_PREDICATES,
    shapes.SCG_PREDICATES,
    frozenset(builtin_predicates()),
    frozenset(REFUSED_PREDICATES),
)


def _table_row(name: str) -> bool:
    return re.search(rf"^\| `{re.escape(name)}` \|", SECTION, re.MULTILINE) is not None


@pytest.mark.parametrize("name", _documented_properties())
def test_property_is_in_the_section(name: str) -> None:
    assert f"`{name}`" in SECTION


def test_switches_are_in_the_section() -> None:
    for pattern in ("filter.<name>.enabled", "predicate.<name>.enabled"):
        assert f"`{pattern}`" in SECTION
    assert "`global-filter.<name>.enabled`" in SECTION
    for name in spring.SCG_GLOBAL_FILTERS:
        assert f"`{name}`" in SECTION or f"`global-filter.{name}.enabled`" in SECTION


@pytest.mark.parametrize("name", FILTERS)
def test_filter_has_a_row(name: str) -> None:
    assert _table_row(name)


@pytest.mark.parametrize("name", PREDICATES)
def test_predicate_has_a_row(name: str) -> None:
    assert _table_row(name)


def test_the_factory_lists_are_derived() -> None:
    # Guards the derivation itself: the kebab lists reach factories shapes does not list.
    assert {"JsonToGrpc", "RequestRateLimiter", "TokenRelay"} <= set(FILTERS)
    assert "XForwardedRemoteAddr" in PREDICATES


@pytest.mark.parametrize("path", [path for path, _ in shapes.ENDPOINTS])
def test_endpoint_is_in_the_section(path: str) -> None:
    full = (BASE + path).rstrip("/")
    assert f"`{full}`" in SECTION
