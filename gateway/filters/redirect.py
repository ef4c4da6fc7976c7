"""RedirectTo: answer with a 3xx and a Location header instead of forwarding."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from gateway.config.args import Args
from gateway.exchange import Exchange, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, SyncFilter
from gateway.filters.describe import filter_text
from gateway.filters.status import status_arg
from gateway.headers import Headers

_BAD_URL_CHARS = re.compile(r"[\x00-\x20\x7f]")


class RedirectTo(SyncFilter):
    name = "RedirectTo"

    def __init__(self, status: int, url: str, include_request_params: bool = False) -> None:
        self._status = status
        self._url = url
        self._include = include_request_params
        base, hash_mark, fragment = url.partition("#")
        self._base = base
        self._fragment = hash_mark + fragment
        self._joiner = "&" if "?" in base else "?"
        self._location = url.encode("latin-1")

    def pre(self, exchange: Exchange) -> Response | None:
        location = self._location
        query = exchange.request.query
        if self._include and query:
            # the client's raw query is appended as it came, so its encoding survives
            text = f"{self._base}{self._joiner}{query}{self._fragment}"
            location = text.encode("latin-1")
        # committed: SCG's RedirectTo calls setComplete(), so no response filter adds to it
        return Response(self._status, Headers([(b"Location", location)]), b"", committed=True)

    def describe(self) -> str:
        return filter_text(
            self.name, (str(self._status), _Raw(self._url)), ("includeRequestParams", self._include)
        )


class _Raw:
    """A value shown unquoted, as Spring shows a URI."""

    def __init__(self, text: str) -> None:
        self._text = text

    def __str__(self) -> str:
        return self._text


def _build(args: Args, ctx: BuildContext) -> GatewayFilter:
    text, status = status_arg(args)
    if not 300 <= status <= 399:
        args.fail("status", f"must be a 3xx code, but was {text}")
    url: str = args.str("url")
    if url == "" or _BAD_URL_CHARS.search(url) or not url.isascii():
        args.fail("url", f"{url!r} is not a valid URL")
    try:
        urlsplit(url)
    except ValueError as exc:
        args.fail("url", f"{url!r} is not a valid URL: {exc}")
    include: bool = args.bool("includeRequestParams", False)
    args.finish()
    return RedirectTo(status, url, include)


FACTORIES: tuple[FilterFactory, ...] = (
    FilterFactory("RedirectTo", ("status", "url", "includeRequestParams"), _build),
)
