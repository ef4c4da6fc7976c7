"""Fixtures for filter unit tests: build a filter the way route config does (shortcut or
expanded arguments) and make a bare Exchange."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest

from gateway.config.args import (
    Args,
    normalize_expanded,
    normalize_shortcut,
    split_shortcut,
)
from gateway.exchange import Exchange, Request
from gateway.extension import BuildContext, GatewayFilter, SyncFilter
from gateway.filters.catalog import builtin_filters
from gateway.headers import Headers

BuildFilter = Callable[..., SyncFilter]
MakeExchange = Callable[..., Exchange]

FIXED_NOW = 1_700_000_000.25


def build_filter(
    name: str, shortcut: str | None = None, args: Mapping[str, Any] | None = None
) -> SyncFilter:
    factory = builtin_filters()[name]
    if args is not None:
        values = normalize_expanded(args)
    else:
        values = normalize_shortcut(
            split_shortcut(shortcut or ""), factory.shortcut_fields, factory.shortcut_type
        )
    built: GatewayFilter = factory.build(Args(values), BuildContext(now=lambda: FIXED_NOW))
    assert isinstance(built, SyncFilter)
    return built


def make_exchange(
    path: str = "/",
    query: str = "",
    headers: Iterable[tuple[str, str]] = (),
    method: str = "GET",
    uri_variables: Mapping[str, str] | None = None,
) -> Exchange:
    head = Headers()
    for name, value in headers:
        head.add(name, value)
    return Exchange(
        request=Request(method=method, path=path, query=query, headers=head),
        client_host="127.0.0.1",
        client_port=50000,
        server_host="127.0.0.1",
        server_port=8080,
        request_id="req-1",
        original_path=path,
        uri_variables=dict(uri_variables or {}),
    )


@pytest.fixture
def build() -> BuildFilter:
    return build_filter


@pytest.fixture
def exchange_for() -> MakeExchange:
    return make_exchange
