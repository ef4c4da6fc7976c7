"""Fixtures for predicate unit tests: build a predicate the way route config does (shortcut text
or expanded arguments) and make bare Exchanges."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest

from gateway.config.args import Args, normalize_expanded, normalize_shortcut, split_shortcut
from gateway.exchange import Exchange, Request
from gateway.extension import BuildContext, Predicate
from gateway.headers import Headers
from gateway.predicates.catalog import builtin_predicates

BuildPredicate = Callable[..., Predicate]
MakeExchange = Callable[..., Exchange]


def build_predicate(
    name: str,
    shortcut: str | None = None,
    args: Mapping[str, Any] | None = None,
    ctx: BuildContext | None = None,
) -> Predicate:
    """``build_predicate("Path", "/a/**")`` or ``build_predicate("Path", args={...})``."""
    factory = builtin_predicates()[name]
    if args is not None:
        values = normalize_expanded(args)
    else:
        values = normalize_shortcut(
            split_shortcut(shortcut or ""), factory.shortcut_fields, factory.shortcut_type
        )
    return factory.build(Args(values), ctx or BuildContext(rng=random.Random(0)))


def make_exchange(
    path: str = "/",
    query: str = "",
    headers: Iterable[tuple[str, str]] = (),
    method: str = "GET",
    client_host: str = "127.0.0.1",
) -> Exchange:
    head = Headers()
    for name, value in headers:
        head.add(name, value)
    return Exchange(
        request=Request(method=method, path=path, query=query, headers=head),
        client_host=client_host,
        client_port=50000,
        server_host="127.0.0.1",
        server_port=8080,
        original_path=path,
    )


@pytest.fixture
def build() -> BuildPredicate:
    return build_predicate


@pytest.fixture
def exchange() -> MakeExchange:
    return make_exchange
