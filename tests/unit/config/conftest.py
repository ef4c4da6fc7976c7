"""Small predicate and filter factories with SCG's names and argument shapes, so the loader and
builder are tested on their own, independent of the built-in catalogs."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from gateway.config.args import Args, ShortcutType
from gateway.exchange import Exchange
from gateway.extension import (
    BuildContext,
    FilterFactory,
    GatewayFilter,
    Predicate,
    PredicateFactory,
    SyncFilter,
)


class RecordingPredicate(Predicate):
    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        self.name = name
        self.config = dict(config)

    def test(self, exchange: Exchange) -> bool:
        return True

    def describe(self) -> str:
        return f"{self.name}: {self.config}"


class RecordingFilter(SyncFilter):
    def __init__(self, name: str, config: Mapping[str, Any], route_id: str) -> None:
        self.name = name
        self.config = dict(config)
        self.route_id = route_id

    def describe(self) -> str:
        return f"[{self.name} {self.config}]"


def _predicate(
    name: str,
    fields: tuple[str, ...],
    read: Callable[[Args], dict[str, Any]],
    kind: ShortcutType = ShortcutType.DEFAULT,
) -> PredicateFactory:
    def build(args: Args, ctx: BuildContext) -> Predicate:
        config = read(args)
        args.finish()
        return RecordingPredicate(name, config)

    return PredicateFactory(name, fields, build, kind)


def _filter(
    name: str, fields: tuple[str, ...], read: Callable[[Args], dict[str, Any]]
) -> FilterFactory:
    def build(args: Args, ctx: BuildContext) -> GatewayFilter:
        config = read(args)
        args.finish()
        return RecordingFilter(name, config, ctx.route_id)

    return FilterFactory(name, fields, build)


def _weight(args: Args, ctx: BuildContext) -> Predicate:
    group, weight = args.str("group"), args.int("weight")
    ctx.weights.register(group, ctx.route_id, weight)
    return RecordingPredicate("Weight", {"group": group, "weight": weight})


def _regexp(args: Args, name: str) -> str:
    text: str = args.str(name)
    try:
        re.compile(text)
    except re.error as exc:
        args.fail(name, str(exc))
    return text


def fake_predicates() -> dict[str, PredicateFactory]:
    factories = [
        _predicate(
            "Path",
            ("patterns", "matchTrailingSlash"),
            lambda a: {
                "patterns": a.str_list("patterns"),
                "matchTrailingSlash": a.bool("matchTrailingSlash", True),
            },
            ShortcutType.GATHER_LIST_TAIL_FLAG,
        ),
        _predicate(
            "Method",
            ("methods",),
            lambda a: {"methods": a.str_list("methods")},
            ShortcutType.GATHER_LIST,
        ),
        _predicate(
            "Header",
            ("header", "regexp"),
            lambda a: {"header": a.str("header"), "regexp": a.str("regexp", None)},
        ),
        PredicateFactory("Weight", ("group", "weight"), _weight),
    ]
    return {factory.name: factory for factory in factories}


def fake_filters() -> dict[str, FilterFactory]:
    factories = [
        _filter(
            "AddRequestHeader",
            ("name", "value"),
            lambda a: {"name": a.str("name"), "value": a.str("value")},
        ),
        _filter(
            "AddResponseHeader",
            ("name", "value"),
            lambda a: {"name": a.str("name"), "value": a.str("value")},
        ),
        _filter("StripPrefix", ("parts",), lambda a: {"parts": a.int("parts", 1)}),
        _filter("PrefixPath", ("prefix",), lambda a: {"prefix": a.str("prefix")}),
        _filter(
            "RewritePath",
            ("regexp", "replacement"),
            lambda a: {"regexp": _regexp(a, "regexp"), "replacement": a.str("replacement")},
        ),
        _filter("PreserveHostHeader", (), lambda a: {}),
        _filter("SetPath", ("template",), lambda a: {"template": a.str("template")}),
    ]
    return {factory.name: factory for factory in factories}


@pytest.fixture
def predicates() -> dict[str, PredicateFactory]:
    return fake_predicates()


@pytest.fixture
def filters() -> dict[str, FilterFactory]:
    return fake_filters()


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a document to a file named ``name`` in a temporary directory."""

    def _write(text: str, name: str = "routes.yml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write
