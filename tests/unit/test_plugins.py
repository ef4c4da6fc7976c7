"""Plugin discovery with entry points from hand-written distributions (a ``.dist-info``
directory in tmp_path, read by importlib.metadata as an installed one would be), pointing at
``tests.plugins.fakes``."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Iterable
from pathlib import Path

import pytest

from gateway.config.errors import ConfigErrors
from gateway.errors import ConfigError
from gateway.filters.catalog import builtin_filters
from gateway.plugins import FILTERS_GROUP, EntryPointSource, Factories, factories
from gateway.predicates.catalog import builtin_predicates
from gateway.routing.validate import validate_text
from tests.plugins import fakes
from tests.plugins.fakes import Stamp

EntryPoint = importlib.metadata.EntryPoint


def dist(tmp_path: Path, name: str, entry_points: str) -> importlib.metadata.Distribution:
    info = tmp_path / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    return importlib.metadata.PathDistribution(info)


def source(*dists: importlib.metadata.Distribution) -> EntryPointSource:
    def entry_points(*, group: str) -> Iterable[EntryPoint]:
        return [ep for d in dists for ep in d.entry_points if ep.group == group]

    return entry_points


def one(tmp_path: Path, group: str, line: str) -> EntryPointSource:
    return source(dist(tmp_path, "acme-plugin", f"[{group}]\n{line}\n"))


def errors_of(entry_points: EntryPointSource) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        factories(entry_points)
    return [str(error) for error in caught.value]


def test_without_plugins_the_factories_are_the_builtins() -> None:
    found = factories(source())
    assert dict(found.predicates) == builtin_predicates()
    assert dict(found.filters) == builtin_filters()
    assert found == Factories.builtin()
    with pytest.raises(TypeError):
        found.filters["X"] = fakes.STAMP  # type: ignore[index]


def test_plugins_join_the_builtins_as_instances_or_made_by_a_callable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    entry_points = source(
        dist(
            tmp_path,
            "acme-plugin",
            "[meshgate.filters]\n"
            "Stamp = tests.plugins.fakes:STAMP\n"
            "MadeStamp = tests.plugins.fakes:make_stamp\n"
            "[meshgate.predicates]\n"
            "Always = tests.plugins.fakes:ALWAYS\n"
            "[unrelated.group]\n"
            "Other = no.such.module:X\n",
        )
    )
    with caplog.at_level(logging.INFO, logger="meshgate.plugins"):
        found = factories(entry_points)
    assert found.filters["Stamp"] is fakes.STAMP
    assert found.filters["MadeStamp"].name == "MadeStamp"
    assert found.predicates["Always"] is fakes.ALWAYS
    assert set(found.filters) == {*builtin_filters(), "Stamp", "MadeStamp"}
    assert set(found.predicates) == {*builtin_predicates(), "Always"}
    assert "loaded filter Stamp from acme-plugin 1.0 (tests.plugins.fakes:STAMP)" in caplog.messages
    assert len(caplog.messages) == 3


def test_a_plugin_gets_the_builtins_argument_parsing_and_located_errors(
    tmp_path: Path,
) -> None:
    found = factories(one(tmp_path, "meshgate.filters", "Stamp = tests.plugins.fakes:STAMP"))
    text = """
routes:
  - id: a
    uri: http://127.0.0.1:9
    filters:
      - Stamp=X-A, short
      - name: Stamp
        args: {header: X-B}
"""
    _, routes = validate_text(text, "r.yml", found.predicates, found.filters)
    built = routes[0].filters
    assert [(f.header, f.value) for f in built if isinstance(f, Stamp)] == [
        ("X-A", "short"),
        ("X-B", "stamped"),
    ]
    bad = """
routes:
  - id: a
    uri: http://127.0.0.1:9
    filters: [Stamp=X-A, bad, extra]
  - id: b
    uri: http://127.0.0.1:9
    filters: ["Stamp=X-A, bad", Stmp=X-A]
"""
    with pytest.raises(ConfigErrors) as caught:
        validate_text(bad, "r.yml", found.predicates, found.filters)
    messages = [str(error) for error in caught.value]
    assert "r.yml: routes[1] (b) filters[0] (Stamp): argument 'value': must not be 'bad'" in (
        messages
    )
    assert any(
        "filters[1] (Stmp): unknown filter 'Stmp' (did you mean Stamp" in m for m in messages
    )


def test_a_plugin_cannot_take_a_builtin_name_and_is_not_even_imported(tmp_path: Path) -> None:
    # The value names a module that does not exist: importing it would be a second error.
    assert errors_of(one(tmp_path, FILTERS_GROUP, "AddRequestHeader = no_such_module:X")) == [
        "entry point meshgate.filters:AddRequestHeader (no_such_module:X from acme-plugin 1.0): "
        "filter name 'AddRequestHeader' clashes with the built-in filter 'AddRequestHeader'; a "
        "plugin cannot replace another factory (names compare ignoring case): rename it"
    ]


def test_names_differing_only_in_case_clash(tmp_path: Path) -> None:
    entry_points = one(tmp_path, FILTERS_GROUP, "addrequestheader = tests.plugins.fakes:X")
    [message] = errors_of(entry_points)
    assert "clashes with the built-in filter 'AddRequestHeader'" in message


def test_two_plugins_with_one_name_clash_naming_both(tmp_path: Path) -> None:
    first = dist(tmp_path, "first-plugin", "[meshgate.filters]\nStamp = tests.plugins.fakes:STAMP")
    second = dist(
        tmp_path, "second-plugin", "[meshgate.filters]\nStamp = tests.plugins.fakes:make_stamp"
    )
    # Whichever order they are found in, the same one is reported (sorted by value), and the
    # one that clashes is not loaded.
    for found in (source(first, second), source(second, first)):
        assert errors_of(found) == [
            "entry point meshgate.filters:Stamp (tests.plugins.fakes:make_stamp from second-plugin"
            " 1.0): filter name 'Stamp' clashes with filter 'Stamp' of entry point "
            "meshgate.filters:Stamp (tests.plugins.fakes:STAMP from first-plugin 1.0); a plugin "
            "cannot replace another factory (names compare ignoring case): rename it"
        ]


def test_the_same_name_in_both_groups_is_no_clash(tmp_path: Path) -> None:
    entry_points = source(
        dist(
            tmp_path,
            "acme-plugin",
            "[meshgate.filters]\nStamp = tests.plugins.fakes:STAMP\n"
            "[meshgate.predicates]\nAlways = tests.plugins.fakes:ALWAYS\n",
        ),
    )
    assert "Stamp" in factories(entry_points).filters


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            "Stamp = no_such_module_for_meshgate:STAMP",
            "cannot be imported: ModuleNotFoundError: No module named "
            "'no_such_module_for_meshgate'",
        ),
        (
            "Stamp = tests.plugins.fakes:MISSING",
            "cannot be imported: AttributeError: module 'tests.plugins.fakes' has no attribute "
            "'MISSING'",
        ),
        ("Stamp = tests.plugins.fakes:NOT_A_FACTORY", "gives a builtins.str, not a FilterFactory"),
        ("Stamp = tests.plugins.fakes", "gives the module tests.plugins.fakes (name an attribute"),
        ("Stamp = tests.plugins.fakes:Stamp", "calling tests.plugins.fakes:Stamp failed"),
        ("Stamp = tests.plugins.fakes:maker_with_args", "failed (a FilterFactory or a zero-"),
        (
            "Stamp = tests.plugins.fakes:broken_maker",
            "calling tests.plugins.fakes:broken_maker failed (a FilterFactory or a zero-argument "
            "callable returning one is expected): RuntimeError: no configuration for the plugin",
        ),
        (
            "Always = tests.plugins.fakes:ALWAYS",
            "gives a PredicateFactory, not a FilterFactory or a zero-argument "
            "callable returning one (register it in meshgate.predicates)",
        ),
        (
            "Stamp = tests.plugins.fakes:MISNAMED",
            "the entry point is named 'Stamp' but its factory is named 'SomethingElse'; they "
            "must be the same",
        ),
        ("Bad-Name = tests.plugins.fakes:BAD_NAME", "'Bad-Name' is not a filter name"),
        (
            "BadFields = tests.plugins.fakes:BAD_FIELDS",
            "shortcut_fields must be a tuple of names, got ['header']",
        ),
    ],
)
def test_a_bad_entry_point_is_a_located_config_error(
    tmp_path: Path, line: str, reason: str
) -> None:
    name, value = (part.strip() for part in line.split("="))
    [message] = errors_of(one(tmp_path, FILTERS_GROUP, line))
    location = f"entry point meshgate.filters:{name} ({value} from acme-plugin 1.0): "
    assert message.startswith(location), message
    assert reason in message.removeprefix(location), message


def test_every_bad_entry_point_is_reported_at_once(tmp_path: Path) -> None:
    entry_points = source(
        dist(
            tmp_path,
            "acme-plugin",
            "[meshgate.filters]\nStamp = tests.plugins.fakes:MISSING\n"
            "Good = tests.plugins.fakes:STAMP\n"
            "[meshgate.predicates]\nPath = tests.plugins.fakes:ALWAYS\n",
        )
    )
    with pytest.raises(ConfigError) as caught:
        factories(entry_points)
    assert isinstance(caught.value, ConfigErrors)
    assert [e.location.split(" (")[0] for e in caught.value] == [
        "entry point meshgate.predicates:Path",
        "entry point meshgate.filters:Good",
        "entry point meshgate.filters:Stamp",
    ]


def test_an_entry_point_without_a_distribution_still_names_itself() -> None:
    def entry_points(*, group: str) -> Iterable[EntryPoint]:
        return [EntryPoint("Stamp", "no_such_module:X", group)] if group == FILTERS_GROUP else []

    [message] = errors_of(entry_points)
    assert message.startswith(
        "entry point meshgate.filters:Stamp (no_such_module:X from an unknown distribution): "
    )
