"""Filters that edit the upstream's response headers on the way back: AddResponseHeader,
RemoveResponseHeader, SetResponseHeader, RewriteResponseHeader."""

from __future__ import annotations

import re
from collections.abc import Callable

from gateway.config.args import Args
from gateway.exchange import Exchange, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, SyncFilter
from gateway.filters.describe import filter_text
from gateway.filters.header_args import header_name, header_template
from gateway.filters.rewrite_args import rewrite_args
from gateway.filters.template import Template, escape_header_value


class AddResponseHeader(SyncFilter):
    """Adds a value; with ``override`` false, only when the response has no non-blank one."""

    name = "AddResponseHeader"

    def __init__(self, header: str, value: Template, override: bool = True) -> None:
        self._header = header
        self._value = value
        self._override = override

    def post(self, exchange: Exchange, response: Response) -> None:
        headers = response.headers
        if not self._override and any(v.strip() for v in headers.get_all(self._header)):
            return
        headers.add(self._header, self._value.expand(exchange.uri_variables, escape_header_value))

    def describe(self) -> str:
        return filter_text(
            self.name,
            ("name", self._header),
            ("value", self._value.text),
            ("override", self._override),
        )


class SetResponseHeader(SyncFilter):
    name = "SetResponseHeader"

    def __init__(self, header: str, value: Template) -> None:
        self._header = header
        self._value = value

    def post(self, exchange: Exchange, response: Response) -> None:
        value = self._value.expand(exchange.uri_variables, escape_header_value)
        response.headers.set(self._header, value)

    def describe(self) -> str:
        return filter_text(self.name, (self._header, self._value.text))


class RemoveResponseHeader(SyncFilter):
    name = "RemoveResponseHeader"

    def __init__(self, header: str) -> None:
        self._header = header

    def post(self, exchange: Exchange, response: Response) -> None:
        response.headers.remove(self._header)

    def describe(self) -> str:
        return filter_text(self.name, ("name", self._header))


class RewriteResponseHeader(SyncFilter):
    """Java ``String.replaceAll`` on every value of the header, in place."""

    name = "RewriteResponseHeader"

    def __init__(
        self,
        header: str,
        regexp: str,
        replacement: str,
        pattern: re.Pattern[str],
        replace: Callable[[re.Match[str]], str],
    ) -> None:
        self._header = header
        self._key = header.lower().encode("latin-1")
        self._regexp = regexp
        self._replacement = replacement
        self._pattern = pattern
        self._replace = replace

    def post(self, exchange: Exchange, response: Response) -> None:
        items = response.headers.raw
        for index, (name, value) in enumerate(items):
            if name.lower() == self._key:
                new = self._pattern.sub(self._replace, value.decode("latin-1"))
                items[index] = (name, escape_header_value(new).encode("latin-1", "replace"))

    def describe(self) -> str:
        return filter_text(
            self.name,
            ("name", self._header),
            ("regexp", self._regexp),
            ("replacement", self._replacement),
        )


def _override(args: Args) -> bool:
    value: bool = args.bool("override", True)
    return value


def _build_add(args: Args, ctx: BuildContext) -> GatewayFilter:
    header, value, override = header_name(args), header_template(args), _override(args)
    args.finish()
    return AddResponseHeader(header, value, override)


def _build_set(args: Args, ctx: BuildContext) -> GatewayFilter:
    header, value = header_name(args), header_template(args)
    args.finish()
    return SetResponseHeader(header, value)


def _build_remove(args: Args, ctx: BuildContext) -> GatewayFilter:
    header = header_name(args)
    args.finish()
    return RemoveResponseHeader(header)


def _build_rewrite(args: Args, ctx: BuildContext) -> GatewayFilter:
    header = header_name(args)
    rewrite = rewrite_args(args)
    args.finish()
    return RewriteResponseHeader(
        header, rewrite.regexp, rewrite.replacement, rewrite.pattern, rewrite.replace
    )


FACTORIES: tuple[FilterFactory, ...] = (
    FilterFactory("AddResponseHeader", ("name", "value", "override"), _build_add),
    FilterFactory("RemoveResponseHeader", ("name",), _build_remove),
    FilterFactory("RewriteResponseHeader", ("name", "regexp", "replacement"), _build_rewrite),
    FilterFactory("SetResponseHeader", ("name", "value"), _build_set),
)
