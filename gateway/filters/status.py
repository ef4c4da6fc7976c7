"""SetStatus, and the parsing of a status given as a number or a Spring ``HttpStatus`` name
(shared with RedirectTo).

With SCG's global ``set-status.original-status-header-name`` set (``ctx.filter_settings``),
SetStatus also sends the status the response had before it, in that header, as SCG 5.0.4 does
(checked against the real SCG): the value is Java's ``List.toString()`` of the code
(``X-Original-Status: [200]``), it replaces any such header the upstream sent, and it is sent
even when the status does not change (SCG sets the status, and so the header, whenever the
response is not yet committed, which it never is when a route filter's post phase runs)."""

from __future__ import annotations

import re
from http import HTTPStatus

from gateway.config.args import Args
from gateway.errors import ConfigError
from gateway.exchange import Exchange, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, SyncFilter
from gateway.filters.describe import filter_text

# An HTTP token (RFC 9110): what a header name must be, as header_args checks argument names.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

# Spring's HttpStatus names where they differ from Python's HTTPStatus (both sets accepted).
_SPRING_NAMES = {
    "CHECKPOINT": 103,
    "MOVED_TEMPORARILY": 302,
    "PAYLOAD_TOO_LARGE": 413,
    "CONTENT_TOO_LARGE": 413,
    "URI_TOO_LONG": 414,
    "I_AM_A_TEAPOT": 418,
    "INSUFFICIENT_SPACE_ON_RESOURCE": 419,
    "METHOD_FAILURE": 420,
    "DESTINATION_LOCKED": 421,
    "UNPROCESSABLE_CONTENT": 422,
    "BANDWIDTH_LIMIT_EXCEEDED": 509,
}
_NAMES = {status.name: status.value for status in HTTPStatus} | _SPRING_NAMES


def parse_status(text: str) -> int:
    """A number (any 100-599, as SCG keeps unknown codes) or an ``HttpStatus`` name."""
    text = text.strip()
    if text.isdigit():
        code = int(text)
        if not 100 <= code <= 599:
            raise ValueError(f"status {code} is outside 100-599")
        return code
    code_for_name = _NAMES.get(text.upper())
    if code_for_name is None:
        raise ValueError(f"unknown HTTP status {text!r} (use a number or a name like NOT_FOUND)")
    return code_for_name


def status_arg(args: Args, key: str = "status") -> tuple[str, int]:
    text: str = args.str(key)
    try:
        return text, parse_status(text)
    except ValueError as exc:
        args.fail(key, str(exc))


class SetStatus(SyncFilter):
    name = "SetStatus"

    def __init__(self, text: str, status: int, original_status_header: str | None = None) -> None:
        self._text = text
        self._status = status
        self._original_status_header = original_status_header

    def post(self, exchange: Exchange, response: Response) -> None:
        original = response.status
        if original != self._status:
            response.status = self._status
            # the upstream's reason phrase described the old status
            response.reason = None
        if self._original_status_header is not None:
            response.headers.set(self._original_status_header, f"[{original}]")

    def describe(self) -> str:
        return filter_text(self.name, ("status", self._text))


def _build(args: Args, ctx: BuildContext) -> GatewayFilter:
    text, status = status_arg(args)
    args.finish()
    header = ctx.filter_settings.original_status_header
    if header is not None and not _TOKEN.fullmatch(header):
        # A global setting, checked where it takes effect: once, with a place in the file,
        # rather than on every response.
        raise ConfigError(
            f"set-status.original-status-header-name {header!r} is not a valid header name"
        )
    return SetStatus(text, status, header)


FACTORIES: tuple[FilterFactory, ...] = (FilterFactory("SetStatus", ("status",), _build),)
