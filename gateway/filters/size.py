"""RequestSize (413 when the declared body is too big) and RequestHeaderSize (431 when any one
header is too big). Both answer with SCG's ``errorMessage`` header plus our JSON error body."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from gateway.config.args import Args
from gateway.exchange import Exchange, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, SyncFilter
from gateway.filters.describe import data_size_text, filter_text
from gateway.filters.header_args import check_header_name
from gateway.filters.local_response import json_error

ERROR_HEADER = "errorMessage"
_PREFIXES = "kMGTPE"


def readable_byte_count(size: int) -> str:
    """SCG's decimal (SI) rendering: ``999 B``, ``6.0 MB``."""
    if size < 1000:
        return f"{size} B"
    exp = int(math.log(size) / math.log(1000))
    return f"{size / 1000**exp:.1f} {_PREFIXES[exp - 1]}B"


def _answer(
    exchange: Exchange, status: int, header: str, message: str, now: Callable[[], float]
) -> Response:
    response = json_error(exchange, status, message, now=now)
    response.headers.add(header, message)
    response.committed = True  # SCG's setComplete(): no response filter adds to it
    return response


class RequestSize(SyncFilter):
    name = "RequestSize"

    def __init__(self, max_size: int, now: Callable[[], float] = time.time) -> None:
        self._max = max_size
        self._now = now

    def pre(self, exchange: Exchange) -> Response | None:
        declared = exchange.request.headers.get("content-length")
        # the engine has already refused a malformed Content-Length; be lenient here
        if declared is None or not declared.strip().isdigit():
            return None
        size = int(declared)
        if size <= self._max:
            return None
        message = (
            "Request size is larger than permissible limit. Request size is "
            f"{readable_byte_count(size)} where permissible limit is "
            f"{readable_byte_count(self._max)}"
        )
        return _answer(exchange, 413, ERROR_HEADER, message, self._now)

    def describe(self) -> str:
        return filter_text(self.name, ("max", _Size(self._max)))


class RequestHeaderSize(SyncFilter):
    """A header's size is its name plus all its values (fields of the same name summed)."""

    name = "RequestHeaderSize"

    def __init__(
        self, max_size: int, error_header: str = ERROR_HEADER, now: Callable[[], float] = time.time
    ) -> None:
        self._max = max_size
        self._error_header = error_header
        self._now = now

    def pre(self, exchange: Exchange) -> Response | None:
        raw = exchange.request.headers.raw
        limit = self._max
        # no single header can exceed the limit when all of them together do not
        if sum(len(name) + len(value) for name, value in raw) <= limit:
            return None
        totals: dict[bytes, int] = {}
        first_names: dict[bytes, bytes] = {}
        for name, value in raw:
            key = name.lower()
            if key in totals:
                totals[key] += len(value)
            else:
                totals[key] = len(name) + len(value)
                first_names[key] = name
        too_long = [(first_names[key], size) for key, size in totals.items() if size > limit]
        if not too_long:
            return None
        message = (
            f"Request Header/s size is larger than permissible limit ({data_size_text(limit)})."
        )
        for name, size in too_long:
            header = name.decode("latin-1")
            message += f" Request Header/s size for '{header}' is {data_size_text(size)}."
        return _answer(exchange, 431, self._error_header, message, self._now)

    def describe(self) -> str:
        return filter_text(self.name, ("maxSize", _Size(self._max)))


class _Size:
    """Shown unquoted like Spring's DataSize (``5000000B``)."""

    def __init__(self, size: int) -> None:
        self._size = size

    def __str__(self) -> str:
        return data_size_text(self._size)


def _max_size(args: Args, default: int) -> int:
    size: int = args.data_size("maxSize", default)
    if size <= 0:
        args.fail("maxSize", f"must be greater than 0, got {size}")
    return size


def _build_request_size(args: Args, ctx: BuildContext) -> GatewayFilter:
    size = _max_size(args, 5_000_000)
    args.finish()
    return RequestSize(size, ctx.now)


def _build_header_size(args: Args, ctx: BuildContext) -> GatewayFilter:
    size = _max_size(args, 16_000)
    error_header: str = args.str("errorHeaderName", ERROR_HEADER)
    check_header_name(args, "errorHeaderName", error_header)
    args.finish()
    return RequestHeaderSize(size, error_header, ctx.now)


FACTORIES: tuple[FilterFactory, ...] = (
    FilterFactory("RequestHeaderSize", ("maxSize",), _build_header_size),
    FilterFactory("RequestSize", ("maxSize",), _build_request_size),
)
