"""Filters that edit the request's headers before it is forwarded: AddRequestHeader,
AddRequestHeadersIfNotPresent, MapRequestHeader, RemoveRequestHeader, SetRequestHeader."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.config.args import Args, ShortcutType
from gateway.exchange import Exchange, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, SyncFilter
from gateway.filters.describe import filter_text
from gateway.filters.header_args import (
    check_header_name,
    check_header_value,
    header_name,
    header_template,
    value_template,
)
from gateway.filters.template import Template, escape_header_value


class AddRequestHeader(SyncFilter):
    name = "AddRequestHeader"

    def __init__(self, header: str, value: Template) -> None:
        self._header = header
        self._value = value

    def pre(self, exchange: Exchange) -> Response | None:
        value = self._value.expand(exchange.uri_variables, escape_header_value)
        exchange.request.headers.add(self._header, value)
        return None

    def describe(self) -> str:
        return filter_text(self.name, (self._header, self._value.text))


class SetRequestHeader(AddRequestHeader):
    name = "SetRequestHeader"

    def pre(self, exchange: Exchange) -> Response | None:
        value = self._value.expand(exchange.uri_variables, escape_header_value)
        exchange.request.headers.set(self._header, value)
        return None


class RemoveRequestHeader(SyncFilter):
    name = "RemoveRequestHeader"

    def __init__(self, header: str) -> None:
        self._header = header

    def pre(self, exchange: Exchange) -> Response | None:
        exchange.request.headers.remove(self._header)
        return None

    def describe(self) -> str:
        return filter_text(self.name, ("name", self._header))


class MapRequestHeader(SyncFilter):
    """Copies every value of ``fromHeader`` onto ``toHeader`` (added to any values it has)."""

    name = "MapRequestHeader"

    def __init__(self, from_header: str, to_header: str) -> None:
        self._from = from_header
        self._to = to_header

    def pre(self, exchange: Exchange) -> Response | None:
        headers = exchange.request.headers
        for value in headers.get_all(self._from):
            headers.add(self._to, value)
        return None

    def describe(self) -> str:
        return filter_text(self.name, ("fromHeader", self._from), ("toHeader", self._to))


class AddRequestHeadersIfNotPresent(SyncFilter):
    """Adds each configured header only when the request has no non-blank value for it; a name
    given several times adds several values."""

    name = "AddRequestHeadersIfNotPresent"

    def __init__(self, pairs: list[tuple[str, Template]]) -> None:
        self._pairs = tuple(pairs)
        grouped: dict[str, tuple[str, list[Template]]] = {}
        for header, value in pairs:
            grouped.setdefault(header.lower(), (header, []))[1].append(value)
        self._groups = tuple((header, tuple(values)) for header, values in grouped.values())

    def pre(self, exchange: Exchange) -> Response | None:
        headers = exchange.request.headers
        for header, values in self._groups:
            if any(value.strip() for value in headers.get_all(header)):
                continue
            for value in values:
                headers.add(header, value.expand(exchange.uri_variables, escape_header_value))
        return None

    def describe(self) -> str:
        return filter_text(self.name, *((header, value.text) for header, value in self._pairs))


def _build_add(args: Args, ctx: BuildContext) -> GatewayFilter:
    header, value = header_name(args), header_template(args)
    args.finish()
    return AddRequestHeader(header, value)


def _build_set(args: Args, ctx: BuildContext) -> GatewayFilter:
    header, value = header_name(args), header_template(args)
    args.finish()
    return SetRequestHeader(header, value)


def _build_remove(args: Args, ctx: BuildContext) -> GatewayFilter:
    header = header_name(args)
    args.finish()
    return RemoveRequestHeader(header)


def _build_map(args: Args, ctx: BuildContext) -> GatewayFilter:
    from_header, to_header = header_name(args, "fromHeader"), header_name(args, "toHeader")
    args.finish()
    return MapRequestHeader(from_header, to_header)


def _key_value(args: Args, item: Any) -> tuple[str, str]:
    if isinstance(item, Mapping):
        name, value = item.get("key", item.get("name")), item.get("value")
        if name is None or value is None:
            args.fail("keyValues", f"expected 'name:value' or {{key, value}}, got {item!r}")
        return str(name).strip(), str(value).strip()
    # SCG splits on every ':' (dropping trailing empty parts, as Java's split does) and
    # requires exactly two parts, so a value cannot itself contain ':'.
    parts = str(item).split(":")
    while parts and parts[-1] == "":
        parts.pop()
    if len(parts) != 2:
        args.fail("keyValues", f"expected format is 'name:value', got {item!r}")
    return parts[0].strip(), parts[1].strip()


def _build_if_not_present(args: Args, ctx: BuildContext) -> GatewayFilter:
    raw = args.raw("keyValues")
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        args.fail("keyValues", "at least one 'name:value' is required")
    pairs: list[tuple[str, Template]] = []
    for item in items:
        name, value = _key_value(args, item)
        check_header_name(args, "keyValues", name)
        check_header_value(args, "keyValues", value)
        pairs.append((name, value_template(args, "keyValues", value)))
    args.finish()
    return AddRequestHeadersIfNotPresent(pairs)


_NAME_VALUE = ("name", "value")

FACTORIES: tuple[FilterFactory, ...] = (
    FilterFactory("AddRequestHeader", _NAME_VALUE, _build_add),
    FilterFactory(
        "AddRequestHeadersIfNotPresent",
        ("keyValues",),
        _build_if_not_present,
        ShortcutType.GATHER_LIST,
    ),
    FilterFactory("MapRequestHeader", ("fromHeader", "toHeader"), _build_map),
    FilterFactory("RemoveRequestHeader", ("name",), _build_remove),
    FilterFactory("SetRequestHeader", _NAME_VALUE, _build_set),
)
