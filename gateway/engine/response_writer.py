"""How a response goes out to the client: its head (the framing the client sees and whether the
connection stays open), a whole response the engine writes itself (errors), and the writer that
streams a body, re-chunking it when its length is unknown."""

from __future__ import annotations

import asyncio
from typing import Protocol

from gateway.engine.cycle import RequestCycle
from gateway.engine.framing import LAST_CHUNK, chunk, end_to_end, serialize_headers, status_line
from gateway.exchange import Response

_NO_BODY_STATUS = frozenset({204, 304})
# A local response's length is ours to state.
_RESTATED = frozenset({b"content-length"})


def response_head(
    cycle: RequestCycle, response: Response, keep_alive: bool
) -> tuple[list[bytes], bool]:
    """The head of ``response``, as pieces to join, and whether a body follows it.

    A bytes body gets its Content-Length; a streamed one keeps its own length, or is re-framed
    as chunked (HTTP/1.1) or delimited by close (HTTP/1.0) when it has none. ``keep_alive``
    says whether the connection may stay open at all. Records the status, the chunking and the
    connection's fate on ``cycle``.
    """
    body = response.body
    status = cycle.status = response.status
    headers = response.headers.raw
    method = cycle.method
    version = cycle.version
    no_body = method == b"HEAD" or status in _NO_BODY_STATUS or status < 200
    if isinstance(body, bytes):
        if not no_body:
            headers = [h for h in headers if h[0].lower() != b"content-length"]
            headers.append((b"Content-Length", b"%d" % len(body)))
        elif status >= 200 and method != b"HEAD" and status != 304:
            headers = [h for h in headers if h[0].lower() != b"content-length"]
    elif body.length is None and not no_body:
        if version == b"1.1":
            cycle.chunked_out = True
            headers = [*headers, (b"Transfer-Encoding", b"chunked")]
        else:
            keep_alive = False  # HTTP/1.0 client: the body ends when we close
    cycle.keep_alive = keep_alive
    if not keep_alive:
        headers = [*headers, (b"Connection", b"close")]
    elif version == b"1.0":
        headers = [*headers, (b"Connection", b"keep-alive")]
    return [
        status_line(version, status, response.reason),
        serialize_headers(headers),
        b"X-Request-Id: %b\r\n\r\n" % cycle.exchange.request_id.encode("ascii"),
    ], not no_body


def local_response(response: Response, version: bytes, *, close: bool) -> bytes:
    """A whole response the engine answers with itself (an error, a timeout), body included."""
    body = response.body if isinstance(response.body, bytes) else b""
    headers = end_to_end(response.headers.raw, drop=_RESTATED)[0]
    headers.append((b"Content-Length", b"%d" % len(body)))
    if close:
        headers.append((b"Connection", b"close"))
    head = status_line(version, response.status, response.reason) + serialize_headers(headers)
    return head + b"\r\n" + body


class ResponseOwner(Protocol):
    """The client connection a streamed response is written on; told how the body ended."""

    def response_done(self, cycle: RequestCycle) -> None:
        """The last byte of the response is written: the connection may carry on."""
        ...

    def response_failed(self, cycle: RequestCycle, exc: BaseException, *, head_sent: bool) -> None:
        """The body broke off; ``head_sent``: the client already has the response head."""
        ...


class ResponseWriter:
    """Writes a streamed response body to the client, re-chunking when the length is unknown.
    The response head is held until the first chunk (or ``flush_head``) so both share a write."""

    __slots__ = ("_cycle", "_head", "_owner", "_transport")

    def __init__(
        self,
        owner: ResponseOwner,
        transport: asyncio.Transport,
        cycle: RequestCycle,
        head: bytes,
    ) -> None:
        self._owner = owner
        self._transport = transport
        self._cycle = cycle
        self._head: bytes | None = head

    def flush_head(self) -> None:
        head, self._head = self._head, None
        if head is not None and not self._transport.is_closing():
            self._transport.write(head)

    def on_data(self, data: bytes) -> None:
        transport = self._transport
        if not data or transport.is_closing():
            return
        self._cycle.bytes_out += len(data)
        payload = chunk(data) if self._cycle.chunked_out else data
        head, self._head = self._head, None
        transport.write(head + payload if head is not None else payload)

    def on_end(self) -> None:
        transport = self._transport
        if transport.is_closing():
            return
        head, self._head = self._head, None
        tail = LAST_CHUNK if self._cycle.chunked_out else b""
        if head is not None or tail:
            transport.write(head + tail if head is not None else tail)
        self._owner.response_done(self._cycle)

    def on_error(self, exc: BaseException) -> None:
        head_sent = self._head is None
        self._head = None
        self._owner.response_failed(self._cycle, exc, head_sent=head_sent)
