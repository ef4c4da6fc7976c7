"""The innermost layer: turn the exchange into one upstream HTTP/1.1 request on a pooled
connection and return the upstream's response with its body still streaming."""

from __future__ import annotations

from gateway.engine.framing import serialize_headers
from gateway.engine.pool import ConnectionPool
from gateway.engine.upstream import ConnectionLostBeforeResponse, strip_hop_by_hop
from gateway.errors import GatewayError
from gateway.exchange import Exchange, Response
from gateway.forwarded import ForwardedHeaders

_DROP_TOWARDS_UPSTREAM = frozenset({b"host", b"expect", b"content-length"})


class Forwarder:
    def __init__(
        self,
        pool: ConnectionPool,
        forwarded: ForwardedHeaders,
        *,
        response_timeout: float,
    ) -> None:
        self._pool = pool
        self._forwarded = forwarded
        self._response_timeout = response_timeout

    async def __call__(self, exchange: Exchange) -> Response:
        target = exchange.target
        if target is None:
            raise GatewayError("no upstream target chosen for the request")
        request = exchange.request
        body = exchange.body
        upgrade = exchange.upgrade is not None
        headers = strip_hop_by_hop(request.headers.raw)
        length = body.length if body is not None else None
        chunked = body is not None and length is None
        host = (
            next((v for n, v in request.headers.raw if n.lower() == b"host"), None)
            if exchange.preserve_host
            else None
        )
        headers = [h for h in headers if h[0].lower() not in _DROP_TOWARDS_UPSTREAM]
        self._forwarded.apply(exchange, headers)
        framing: list[tuple[bytes, bytes]] = [
            (b"Host", host if host is not None else target.authority.encode("latin-1"))
        ]
        if upgrade:
            assert exchange.upgrade is not None
            framing.append((b"Connection", b"Upgrade"))
            framing.append((b"Upgrade", exchange.upgrade.protocol.encode("latin-1")))
        if chunked:
            framing.append((b"Transfer-Encoding", b"chunked"))
        elif length is not None:
            framing.append((b"Content-Length", b"%d" % length))
        head = b"".join(
            (
                request.method.encode("latin-1"),
                b" ",
                request.target.encode("latin-1"),
                b" HTTP/1.1\r\n",
                serialize_headers(framing),
                serialize_headers(headers),
                b"\r\n",
            )
        )
        metadata = exchange.route.metadata if exchange.route is not None else {}
        connect_timeout = _millis(metadata.get("connect-timeout"))
        response_timeout = _millis(metadata.get("response-timeout")) or self._response_timeout
        head_request = request.method == "HEAD"
        # A reused keep-alive connection may have been closed by the upstream just as we picked
        # it; that is retried once on a fresh connection, but only when no body was sent.
        for attempt in (0, 1):
            conn, reused = await self._pool.acquire(
                target.host, target.port, target.secure, connect_timeout
            )
            try:
                return await conn.send(
                    head,
                    body,
                    chunked=chunked,
                    head_request=head_request,
                    upgrade=upgrade,
                    response_timeout=response_timeout,
                )
            except ConnectionLostBeforeResponse:
                if attempt or not reused or body is not None:
                    raise
            except BaseException:
                conn.abort()
                raise
        raise AssertionError("unreachable")


def _millis(value: object) -> float | None:
    """SCG route metadata gives timeouts in milliseconds."""
    if value is None:
        return None
    try:
        millis = float(str(value))
    except ValueError:
        return None
    return millis / 1000.0 if millis > 0 else None
