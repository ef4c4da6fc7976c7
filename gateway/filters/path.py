"""Filters that change the request path: PrefixPath, StripPrefix, SetPath, RewritePath.

Each records the path it replaced in ``exchange.attributes["original_paths"]`` (SCG's
GATEWAY_ORIGINAL_REQUEST_URL_ATTR), from which X-Forwarded-Prefix is derived later.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gateway.config.args import Args
from gateway.exchange import ORIGINAL_PATHS, Exchange, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, SyncFilter
from gateway.filters.describe import filter_text
from gateway.filters.rewrite_args import rewrite_args
from gateway.filters.template import Template, compile_template, escape_path_value

# SCG's GATEWAY_ALREADY_PREFIXED_ATTR: a retried or re-forwarded request is prefixed once.
ALREADY_PREFIXED = "already_prefixed"
_PATH_CLEAN = re.compile(r"[A-Za-z0-9/%:@!$&'()*+,;=\-._~]*")


def set_path(exchange: Exchange, new_path: str) -> None:
    """Install ``new_path``, keeping it a valid origin-form path: rooted (as Spring's URI
    builder makes it) and with any character a path cannot hold percent-encoded."""
    if not _PATH_CLEAN.fullmatch(new_path):
        new_path = escape_path_value(new_path)
    if not new_path.startswith("/"):
        new_path = "/" + new_path
    request = exchange.request
    if new_path != request.path:
        exchange.attributes.setdefault(ORIGINAL_PATHS, []).append(request.path)
        request.path = new_path


class PrefixPath(SyncFilter):
    name = "PrefixPath"

    def __init__(self, prefix: Template) -> None:
        self._prefix = prefix

    def pre(self, exchange: Exchange) -> Response | None:
        if exchange.attributes.get(ALREADY_PREFIXED):
            return None
        exchange.attributes[ALREADY_PREFIXED] = True
        prefix = self._prefix.expand(exchange.uri_variables, escape_path_value)
        set_path(exchange, prefix + exchange.request.path)
        return None

    def describe(self) -> str:
        return filter_text(self.name, ("prefix", self._prefix.text))


class StripPrefix(SyncFilter):
    """Drops the first ``parts`` non-empty segments; keeps a trailing slash; ``/`` if none left."""

    name = "StripPrefix"

    def __init__(self, parts: int) -> None:
        self._parts = parts

    def pre(self, exchange: Exchange) -> Response | None:
        path = exchange.request.path
        segments = [s for s in path.split("/") if s.strip()]
        kept = "/".join(segments[self._parts :])
        new_path = "/" + kept
        if kept and path.endswith("/"):
            new_path += "/"
        set_path(exchange, new_path)
        return None

    def describe(self) -> str:
        return filter_text(self.name, ("parts", self._parts))


class SetPath(SyncFilter):
    name = "SetPath"

    def __init__(self, template: Template) -> None:
        self._template = template

    def pre(self, exchange: Exchange) -> Response | None:
        set_path(exchange, self._template.expand(exchange.uri_variables, escape_path_value))
        return None

    def describe(self) -> str:
        return filter_text(self.name, ("template", self._template.text))


class RewritePath(SyncFilter):
    """Java ``replaceAll`` of ``regexp`` by ``replacement`` on the (encoded) path only."""

    name = "RewritePath"

    def __init__(
        self,
        regexp: str,
        replacement: str,
        pattern: re.Pattern[str],
        replace: Callable[[re.Match[str]], str],
    ) -> None:
        self._regexp = regexp
        # SCG shows the replacement after its "$\" -> "$" rewrite.
        self._replacement = replacement.replace("$\\", "$")
        self._pattern = pattern
        self._replace = replace

    def pre(self, exchange: Exchange) -> Response | None:
        set_path(exchange, self._pattern.sub(self._replace, exchange.request.path))
        return None

    def describe(self) -> str:
        return filter_text(self.name, (self._regexp, self._replacement))


def _rooted_template(args: Args, key: str) -> Template:
    text: str = args.str(key)
    if not text.startswith("/"):
        args.fail(key, f"must start with '/', got {text!r}")
    try:
        return compile_template(text)
    except ValueError as exc:
        args.fail(key, str(exc))


def _build_prefix(args: Args, ctx: BuildContext) -> GatewayFilter:
    prefix = _rooted_template(args, "prefix")
    args.finish()
    return PrefixPath(prefix)


def _build_strip(args: Args, ctx: BuildContext) -> GatewayFilter:
    parts: int = args.int("parts", 1)
    if parts < 0:
        args.fail("parts", f"must be 0 or more, got {parts}")
    args.finish()
    return StripPrefix(parts)


def _build_set(args: Args, ctx: BuildContext) -> GatewayFilter:
    template = _rooted_template(args, "template")
    args.finish()
    return SetPath(template)


def _build_rewrite(args: Args, ctx: BuildContext) -> GatewayFilter:
    rewrite = rewrite_args(args)
    args.finish()
    if rewrite.regexp == "":
        args.fail("regexp", "must not be empty")
    return RewritePath(rewrite.regexp, rewrite.replacement, rewrite.pattern, rewrite.replace)


FACTORIES: tuple[FilterFactory, ...] = (
    FilterFactory("PrefixPath", ("prefix",), _build_prefix),
    FilterFactory("RewritePath", ("regexp", "replacement"), _build_rewrite),
    FilterFactory("SetPath", ("template",), _build_set),
    FilterFactory("StripPrefix", ("parts",), _build_strip),
)
