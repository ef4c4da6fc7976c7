"""RemoveJsonAttributesResponseBody: named attributes removed from a JSON response body, at the
root object or (``deleteRecursively``) at every depth.

As in SCG 5.0.4 (its ModifyResponseBody with Jackson underneath, checked against the jar):
- only a body whose final Content-Type is compatible with ``application/json`` is touched
  (``application/json;charset=...``, ``application/*``, ``*/*``, ``application/*+json``), not
  ``application/problem+json`` nor ``text/plain``; any status;
- the body is parsed and written again compactly, the way Jackson writes it: key order kept,
  a repeated key's last value, numbers as Java prints doubles (``1.0E20``, ``100.0``), big
  integers exactly, ``"\\u001F"``-style escapes for control characters, nothing else escaped,
  an out-of-range number as the string ``"Infinity"``;
- ``Content-Encoding: gzip`` is decoded first and encoded again; Content-Length is the new
  length (a chunked upstream body arrives with one);
- an empty body stays empty; a body that is not JSON (malformed, trailing data, whitespace
  only, or still compressed by another coding) answers 500 — so does a Content-Type that is
  not a media type at all;
- the filter has SCG's order -2 (ModifyResponseBody's): it sees the response after every
  route filter with a position order, and LocalResponseCache keeps what it wrote.

Where meshgate differs: a body that is not JSON passes through untouched and streamed (SCG
decodes and re-encodes every body as text); a HEAD response keeps its Content-Length (SCG sets
0). JSON bodies are held up to ``GATEWAY_RETRY_MAX_BODY`` bytes (1 MiB by default; SCG's codec
stops at 256 KiB); a larger one answers 500, as SCG does past its limit, rather than leak the
attributes the filter is there to remove.
"""

from __future__ import annotations

import codecs
import gzip
import json
import math
import zlib
from decimal import Decimal
from typing import Any

from gateway.config.args import Args
from gateway.errors import GatewayError, UpstreamProtocolError
from gateway.exchange import Exchange, Handler, Response
from gateway.extension import (
    BuildContext,
    FilterFactory,
    GatewayFilter,
    ShortcutType,
    WrappingFilter,
)
from gateway.filters.buffered_body import BodyFailed, BodyTooLarge, read_body
from gateway.headers import Headers
from resilience.runtime import RuntimeSettings

# SCG: NettyWriteResponseFilter.WRITE_RESPONSE_FILTER_ORDER - 1
ORDER = -2
_NO_BODY = frozenset({204, 304})


class RemoveJsonAttributes(WrappingFilter):
    name = "RemoveJsonAttributesResponseBody"
    order = ORDER

    def __init__(self, fields: tuple[str, ...], recursive: bool, limit: int) -> None:
        self._fields = fields
        self._recursive = recursive
        self._limit = limit

    def describe(self) -> str:
        # What SCG's actuator shows: the ModifyResponseBody filter it is built on.
        return (
            "[ModifyResponseBody New content type = [null], In class = String, Out class = String]"
        )

    def wrap(self, inner: Handler) -> Handler:
        async def remove_attributes(exchange: Exchange) -> Response:
            response = await inner(exchange)
            if exchange.request.method == "HEAD" or response.status in _NO_BODY:
                return response
            try:
                is_json = json_compatible(response.headers.get("content-type"))
            except GatewayError:
                response.discard()  # nobody reads it now: let its connection and slots go
                raise
            if is_json:
                await self._rewrite(response)
            return response

        return remove_attributes

    async def _rewrite(self, response: Response) -> None:
        body = response.body
        if isinstance(body, bytes):
            data = body
            if len(data) > self._limit:
                raise _too_large(self._limit)
        else:
            try:
                data = await read_body(body, self._limit)
            except BodyTooLarge as exc:
                body.abort()  # its connection can't be reused with the rest unread
                raise _too_large(exc.limit) from None
            except BodyFailed as exc:
                raise UpstreamProtocolError(f"upstream body failed: {exc}") from exc
        if data:
            data = self._transform(response.headers, data)
        response.body = data
        if "content-length" in response.headers:
            response.headers.set("Content-Length", str(len(data)))

    def _transform(self, headers: Headers, data: bytes) -> bytes:
        gzipped = "gzip" in headers.get_all("content-encoding")
        charset = _charset(headers.get("content-type"))
        try:
            text = (gzip.decompress(data) if gzipped else data).decode(charset, "replace")
            tree = json.loads(text, parse_constant=_no_constant)
            remove_attributes(tree, self._fields, self._recursive)
            out = to_json(tree).encode(charset, "replace")
        except (ValueError, RecursionError, OSError, EOFError, zlib.error) as exc:
            raise GatewayError("Failed to process JSON of response body.") from exc
        return _gzip(out) if gzipped else out


def _gzip(data: bytes) -> bytes:
    """As Java's GZIPOutputStream writes it: the default deflate level, no name, no time, and
    the operating system byte "unknown" (255)."""
    packed = bytearray(gzip.compress(data, compresslevel=6, mtime=0))
    packed[9] = 0xFF
    return bytes(packed)


def _too_large(limit: int) -> GatewayError:
    return GatewayError(f"Exceeded limit on max bytes to buffer : {limit}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Jackson refuses NaN/Infinity literals


def _charset(content_type: str | None) -> str:
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            name = value.strip().strip('"')
            try:
                codecs.lookup(name)
            except LookupError:
                raise GatewayError(f"Unsupported charset {name!r} in Content-Type") from None
            return name
    return "utf-8"


def json_compatible(content_type: str | None) -> bool:
    """Spring's ``MediaType.APPLICATION_JSON.isCompatibleWith(contentType)``. A value that is
    no media type fails the request, as Spring's parser does."""
    if content_type is None:
        return False
    essence = content_type.split(";", 1)[0].strip().lower()
    if essence == "*":
        return True  # Spring reads a lone "*" as */*
    kind, slash, subtype = essence.partition("/")
    if not slash or not kind.strip() or not subtype.strip():
        raise GatewayError(f"Invalid mime type {content_type!r}")
    kind, subtype = kind.strip(), subtype.strip()
    if kind == "*":
        return True
    if kind != "application":
        return False
    if subtype in ("json", "*"):
        return True
    # application/*+json: a wildcard subtype with the json suffix
    return subtype.startswith("*+") and subtype[2:] == "json"


def remove_attributes(node: Any, fields: tuple[str, ...], recursive: bool) -> None:
    """Jackson's ``ObjectNode.remove(fields)`` on an object, then (recursive) the same on
    every element or value below it."""
    if isinstance(node, dict):
        for name in fields:
            node.pop(name, None)
    if recursive:
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        for child in children:
            remove_attributes(child, fields, True)


# -- writing JSON as Jackson does -------------------------------------------------------------
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f"}
_SHORT_ESCAPES["\r"] = "\\r"
_ESCAPES = {chr(c): _SHORT_ESCAPES.get(chr(c), f"\\u{c:04X}") for c in range(0x20)}
_ESCAPES.update(_SHORT_ESCAPES)
_ESCAPE_TABLE = str.maketrans(_ESCAPES)


def _string(text: str) -> str:
    return '"' + text.translate(_ESCAPE_TABLE) + '"'


def java_double(value: float) -> str:
    """Java's ``Double.toString`` (what Jackson writes for a double): the shortest digits
    that read back as the same double, in plain notation for 1e-3 <= |x| < 1e7 and as
    ``d.dddE±n`` outside it, always with a fractional digit."""
    if math.isinf(value):
        return '"Infinity"' if value > 0 else '"-Infinity"'  # Jackson writes them as strings
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if magnitude == 5e-324:
        return sign + "4.9E-324"  # Double.MIN_VALUE, which Java prints with two digits
    digits_tuple, exponent = Decimal(repr(magnitude)).as_tuple()[1:]
    assert isinstance(exponent, int)
    digits = "".join(map(str, digits_tuple)).rstrip("0") or "0"
    # magnitude == 0.d1d2d3... * 10**point
    point = len(digits_tuple) + exponent
    if 1e-3 <= magnitude < 1e7:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        whole, fraction = digits[:point].ljust(point, "0"), digits[point:]
        return f"{sign}{whole}.{fraction or '0'}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{point - 1}"


def to_json(node: Any) -> str:
    """``node`` as Jackson's ``writeValueAsString`` writes a tree: compact, nothing escaped
    beyond quotes, backslashes and control characters."""
    parts: list[str] = []
    _write(node, parts)
    return "".join(parts)


def _write(node: Any, out: list[str]) -> None:
    if isinstance(node, str):
        out.append(_string(node))
    elif node is True:
        out.append("true")
    elif node is False:
        out.append("false")
    elif node is None:
        out.append("null")
    elif isinstance(node, int):
        out.append(str(node))
    elif isinstance(node, float):
        out.append(java_double(node))
    elif isinstance(node, dict):
        out.append("{")
        first = True
        for key, value in node.items():
            if not first:
                out.append(",")
            first = False
            out.append(_string(key))
            out.append(":")
            _write(value, out)
        out.append("}")
    else:
        out.append("[")
        for index, value in enumerate(node):
            if index:
                out.append(",")
            _write(value, out)
        out.append("]")


def _build(args: Args, ctx: BuildContext) -> GatewayFilter:
    fields: list[str] = args.str_list("fieldList")
    recursive: bool = args.bool("deleteRecursively", False)
    args.finish()
    if not fields:
        args.fail("fieldList", "name at least one attribute to remove")
    settings = ctx.runtimes.settings if ctx.runtimes is not None else RuntimeSettings()
    return RemoveJsonAttributes(tuple(fields), recursive, settings.retry_max_body)


FACTORIES: tuple[FilterFactory, ...] = (
    FilterFactory(
        "RemoveJsonAttributesResponseBody",
        ("fieldList", "deleteRecursively"),
        _build,
        ShortcutType.GATHER_LIST_TAIL_FLAG,
    ),
)
