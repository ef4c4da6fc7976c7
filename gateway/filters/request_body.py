"""CacheRequestBody: the request body read whole before the request goes on, kept as SCG's
``cachedRequestBody`` exchange attribute for later filters, and sent upstream from memory.

As in SCG 5.0.4:
- the body reaches the upstream unchanged, with the client's framing (a chunked body stays
  chunked); a request without a body gets no attribute, and neither does an empty body;
- an attribute already set (by an earlier filter) is kept and the body is not read again;
- ``bodyClass`` says what the attribute holds. Here that is ``java.lang.String`` (the body
  decoded with the Content-Type's charset, UTF-8 by default) or ``byte[]`` (also ``[B`` and
  SCG's ``DataBuffer``): the raw bytes. SCG's other classes are decoded by Java codecs into
  Java objects that have no counterpart here, so they are refused when the route is built.

Where meshgate differs: the body is kept up to ``GATEWAY_RETRY_MAX_BODY`` bytes (the one bound
on request bodies held in memory, 1 MiB by default) and a larger one is answered 413 — SCG's
codec stops at 256 KiB and answers 500. SCG's shortcut form (``CacheRequestBody=...``) sets no
``bodyClass`` and fails every request; here it is refused when the route is built. Because
the kept body can be sent again, a later Retry or CircuitBreaker fallback re-sends it whole.
"""

from __future__ import annotations

import codecs

from gateway.config.args import Args
from gateway.errors import BadRequest, PayloadTooLarge
from gateway.exchange import BodySource, Exchange, Handler, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, WrappingFilter
from gateway.filters.buffered_body import BodyFailed, BodyTooLarge, BufferedBody, read_body
from resilience.runtime import RuntimeSettings

# SCG's ServerWebExchangeUtils.CACHED_REQUEST_BODY_ATTR
CACHED_REQUEST_BODY = "cachedRequestBody"

# bodyClass as written (Spring resolves it with ClassUtils.forName) -> (keeps text, the
# simple name SCG's actuator shows)
_BODY_CLASSES: dict[str, tuple[bool, str]] = {
    "java.lang.String": (True, "String"),
    "byte[]": (False, "byte[]"),
    "[B": (False, "byte[]"),
    "org.springframework.core.io.buffer.DataBuffer": (False, "DataBuffer"),
}


class CacheRequestBody(WrappingFilter):
    name = "CacheRequestBody"

    def __init__(self, *, as_text: bool, shown_class: str, limit: int) -> None:
        self._as_text = as_text
        self._shown_class = shown_class
        self._limit = limit

    def describe(self) -> str:
        return f"[{self.name} Body class = {self._shown_class}]"

    def wrap(self, inner: Handler) -> Handler:
        async def cache_body(exchange: Exchange) -> Response:
            body = exchange.body
            if body is not None and exchange.attributes.get(CACHED_REQUEST_BODY) is None:
                data = await self._read(body)
                exchange.body = BufferedBody(data, body.length)
                if data:
                    exchange.attributes[CACHED_REQUEST_BODY] = (
                        _decode(data, exchange.request.headers.get("content-type"))
                        if self._as_text
                        else data
                    )
            return await inner(exchange)

        return cache_body

    async def _read(self, body: BodySource) -> bytes:
        try:
            return await read_body(body, self._limit)
        except BodyTooLarge as exc:
            # The engine reads and drops the rest, so the client still gets this answer.
            raise PayloadTooLarge(
                f"Request body is larger than CacheRequestBody keeps ({exc.limit} bytes, "
                "GATEWAY_RETRY_MAX_BODY)"
            ) from None
        except BodyFailed as exc:
            raise BadRequest(f"request body broke off: {exc}") from exc


def _decode(data: bytes, content_type: str | None) -> str:
    """Spring's StringDecoder: the Content-Type's charset, else UTF-8; bad bytes become
    U+FFFD, as Java's decoder replaces them."""
    charset = "utf-8"
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    return data.decode(charset, "replace")


def _build(args: Args, ctx: BuildContext) -> GatewayFilter:
    written = args.str("bodyClass").strip()
    args.finish()
    kind = _BODY_CLASSES.get(written)
    if kind is None:
        args.fail(
            "bodyClass",
            f"{written!r} is not supported: use java.lang.String (the body as text) or byte[] "
            "(the raw bytes); SCG's other classes are Java objects its codecs decode into",
        )
    as_text, shown = kind
    settings = ctx.runtimes.settings if ctx.runtimes is not None else RuntimeSettings()
    return CacheRequestBody(as_text=as_text, shown_class=shown, limit=settings.retry_max_body)


FACTORIES: tuple[FilterFactory, ...] = (
    # SCG declares no shortcut fields: the shortcut form is refused as taking no argument.
    FilterFactory("CacheRequestBody", (), _build),
)
