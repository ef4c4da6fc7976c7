"""The innermost layer: turn the exchange into one upstream HTTP/1.1 request on a pooled
connection and return the upstream's response with its body still streaming."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from functools import partial
from typing import TYPE_CHECKING, Protocol

from gateway import baggage as _baggage
from gateway.engine.framing import HOP_BY_HOP, connection_tokens, serialize_headers
from gateway.engine.pool import ConnectionPool
from gateway.engine.upstream import ConnectionLostBeforeResponse
from gateway.exchange import Destination, Exchange, Response, Target
from gateway.forwarded import FORWARDED_NAMES, ForwardedHeaders
from gateway.forwarded import JOIN as _JOIN
from gateway.hash_key import KeyOf
from resilience.lanes import STABLE
from resilience.runtime import AttemptHooks

if TYPE_CHECKING:
    from gateway.observability.observer import RequestObserver
    from gateway.observability.tracing import OpenSpan


class Pick(Protocol):
    """Chooses the destination of one attempt from the instances already tried, the request's
    hash key and its gray-release lane (``resilience.picker.InstancePicker.pick`` or
    ``FixedTarget.pick``)."""

    def __call__(
        self, tried: set[str] | None, key: Hashable | None, lane: str | None = None, /
    ) -> Destination: ...


# Fields of the client's request that are not passed on as they are.
# (X-Request-Id is written anew: the gateway's id, which is the client's when it sent one.)
_NOT_FORWARDED = (
    HOP_BY_HOP
    | FORWARDED_NAMES
    | {
        b"host",
        b"expect",
        b"content-length",
        b"x-request-id",
        _baggage.NAME,
        # Only the verified client certificate's is sent (written below): never one a
        # client or a filter set.
        b"x-forwarded-client-cert",
    }
)


class Forwarder:
    def __init__(
        self,
        pool: ConnectionPool,
        forwarded: ForwardedHeaders,
        *,
        response_timeout: float,
        observer: RequestObserver | None = None,
        trust_inbound_lane: bool = False,
    ) -> None:
        """``trust_inbound_lane``: a ``lane`` entry in the client's ``baggage`` picks the
        lane when no route filter did (east-west traffic); otherwise it is only removed."""
        self._pool = pool
        self._forwarded = forwarded
        self._response_timeout = response_timeout
        self._trust_lane = trust_inbound_lane
        self._observer = observer
        self._tracing = observer.tracing if observer is not None else None

    def head(
        self,
        exchange: Exchange,
        target: Destination,
        traceparent: bytes | None = None,
        request_target: str | None = None,
    ) -> bytes:
        """The upstream request head: the client's fields minus hop-by-hop, framing and
        forwarding ones (written anew), in one pass and one serialisation. ``traceparent``,
        when given, replaces the client's (this hop's span is the upstream's parent);
        ``request_target`` (path and query), when given, replaces the request's.

        ``baggage`` loses any ``lane`` entry the client sent and carries the lane the request
        is in: the picked instance's (none for stable, a fallback included), or for a fixed
        address the lane the request asked for."""
        request = exchange.request
        body = exchange.body
        previous: dict[bytes, bytes] | None = {} if self._forwarded.trusts(exchange) else None
        named: set[bytes] | None = None
        baggage: list[tuple[bytes, bytes]] | None = None
        host = target.authority.encode("latin-1")
        headers: list[tuple[bytes, bytes]] = []
        for item in request.headers.raw:
            lname = item[0].lower()
            if lname not in _NOT_FORWARDED:
                if traceparent is None or lname != b"traceparent":
                    headers.append(item)
            elif lname == b"host":
                if exchange.preserve_host:
                    host = item[1]
            elif lname == b"connection":
                tokens = connection_tokens(item[1])
                named = tokens if named is None else named | tokens
            elif lname == b"baggage":
                if baggage is None:
                    baggage = [item]
                else:
                    baggage.append(item)
            elif previous is not None and lname in FORWARDED_NAMES:
                # One comma-delimited value, as SCG's XForwardedHeadersFilter joins them.
                prior = previous.get(lname)
                previous[lname] = item[1] if prior is None else prior + _JOIN[lname] + item[1]
        if traceparent is not None:
            headers.append((b"traceparent", traceparent))
        if named:
            headers = [h for h in headers if h[0].lower() not in named]
            if _baggage.NAME in named:
                baggage = None  # hop-by-hop this time: the client's stops here
        lane = target.lane
        if lane is None:
            lane = exchange.lane  # a fixed address: the lane asked for travels on
        if lane == STABLE:
            lane = None
        if baggage is not None or lane is not None:
            headers.extend(_baggage.outbound(baggage, lane))
        headers.insert(0, (b"Host", host))
        if exchange.upgrade is not None:
            headers.append((b"Connection", b"Upgrade"))
            headers.append((b"Upgrade", exchange.upgrade.protocol.encode("latin-1")))
        if body is not None:
            if body.length is None:
                headers.append((b"Transfer-Encoding", b"chunked"))
            else:
                headers.append((b"Content-Length", b"%d" % body.length))
        headers.append((b"X-Request-Id", exchange.request_id.encode("ascii")))
        client_cert = exchange.client_cert
        if client_cert is not None:
            headers.append((b"X-Forwarded-Client-Cert", client_cert.xfcc))
        self._forwarded.append(exchange, headers, previous)
        if request_target is None:
            request_target = request.target
        line = f"{request.method} {request_target} HTTP/1.1\r\n".encode("latin-1")
        return b"".join((line, serialize_headers(headers), b"\r\n"))

    async def forward(
        self,
        pick: Pick,
        key_of: KeyOf | None,
        connect_timeout: float | None,
        response_timeout: float | None,
        hooks: AttemptHooks | None,
        exchange: Exchange,
        request_target: str | None = None,
    ) -> Response:
        """Send the exchange to the destination ``pick`` chooses (a fixed address, or a
        balanced instance avoiding ``exchange.tried``, keyed by ``key_of``); the timeouts
        (route overrides) default to the gateway's; ``hooks`` account the attempt (bulkhead,
        load, outlier detection) for balanced routes. Arguments come in this order so a route
        binds the first five once with ``functools.partial``. ``request_target`` is the path
        and query of a URL a filter re-targeted the request to (SetRequestUri), sent instead of
        the request's own."""
        lane = exchange.lane
        if lane is None and self._trust_lane:
            # No route filter chose (a filter wins over inbound baggage).
            lane = exchange.lane = _baggage.inbound_lane(exchange.request.headers.raw)
        exchange.target = target = pick(
            exchange.tried, key_of(exchange) if key_of is not None else None, lane
        )
        if lane is not None and target.lane is not None and target.lane != lane:
            exchange.lane_fallback = True  # the lane had no instance: stable took it
        instance = target.instance_id
        entered = hooks.begin(instance) if hooks is not None else None
        tracing = self._tracing
        span: OpenSpan | None = None
        traceparent: bytes | None = None
        if tracing is not None:
            span, traceparent = tracing.client_start(exchange, target)
        status: int | None = None
        error: BaseException | None = None
        try:
            body = exchange.body
            chunked = body is not None and body.length is None
            upgrade = exchange.upgrade is not None
            head = self.head(exchange, target, traceparent, request_target)
            exchange.upstream_head = head  # what a mirrored copy re-addresses
            response_timeout = response_timeout or self._response_timeout
            head_request = exchange.request.method == "HEAD"
            # A reused keep-alive connection may have been closed by the upstream just as we
            # picked it; that is retried once on a fresh connection, but only when no body was
            # sent.
            for attempt in (0, 1):
                conn = self._pool.take(
                    target.host, target.port, target.secure, target.tls_server_name
                )
                reused = conn is not None
                if conn is None:
                    conn = await self._pool.connect(
                        target.host,
                        target.port,
                        target.secure,
                        connect_timeout,
                        target.tls_server_name,
                    )
                try:
                    response = await conn.send(
                        head,
                        body,
                        chunked=chunked,
                        head_request=head_request,
                        upgrade=upgrade,
                        response_timeout=response_timeout,
                    )
                    status = response.status
                    return response
                except ConnectionLostBeforeResponse:
                    if attempt or not reused or body is not None:
                        raise
                except BaseException:
                    conn.abort()
                    raise
            raise AssertionError("unreachable")
        except BaseException as exc:
            error = exc
            raise
        finally:
            if hooks is not None:
                hooks.outcome(
                    instance,
                    status is not None and status < 500,
                    isinstance(error, asyncio.CancelledError),
                )
                answer = response.body if status is not None else b""
                if isinstance(answer, bytes):
                    hooks.release(instance, entered)
                else:
                    # Slots (bulkhead, in-flight count) are held until the body is over.
                    answer.when_done(partial(hooks.release, instance, entered))
            if self._observer is not None:
                self._observer.attempt(target, status)
            if span is not None and tracing is not None:
                tracing.client_end(exchange, span, status, error)


class FixedTarget:
    """The ``pick`` of a route with a fixed ``http(s)://`` URI: always the same address."""

    __slots__ = ("_target",)

    def __init__(self, target: Target) -> None:
        self._target = target

    def pick(
        self, tried: set[str] | None, key: Hashable | None, lane: str | None = None
    ) -> Destination:
        return self._target
