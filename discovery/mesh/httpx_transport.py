"""``MeshTransport``: an httpx transport that sends through a ``MeshClient``, so code written
for ``httpx.AsyncClient`` calls services by name with the mesh's whole call path (the
registry, the balancer, retries, the breaker, the bulkhead, lanes, trace propagation and the
service's timeouts) instead of a copy of it::

    async with MeshClient(registry) as mesh:
        async with httpx.AsyncClient(transport=MeshTransport(mesh)) as client:
            response = await client.get("http://billing/invoices/7")

httpx is an optional extra (``pip install meshgate[httpx]``): this module imports it, and
``discovery.mesh`` does not import this module.

What httpx hands over and what the transport makes of it:

- the URL goes to ``MeshClient`` as it is: a service name (``http://billing/...``,
  ``lb://billing/...``) is an instance of the service per attempt, any other host is sent
  direct, exactly as with ``MeshClient.request``;
- headers keep their order and repeated names. The ``Host`` httpx derives from the URL is
  dropped (aiohttp names the instance the attempt goes to); a ``Host`` set explicitly, one
  that differs from the URL's, is sent. ``Content-Length`` and ``Transfer-Encoding`` are left
  to aiohttp, which frames the body (a streamed body keeps a known ``Content-Length``);
- a body held in memory (``content=`` bytes or text, ``json=``, ``data=`` form fields), or one
  whose ``Content-Length`` is at most the mesh's ``RuntimeSettings.retry_max_body`` (small
  multipart uploads), is read whole and can be sent again by a retry. A longer or unsized
  streamed body (an async iterator, large files) is sent once as it is produced: a call that
  carries one is never retried, whatever the policy says;
- redirects are not followed here and the body is not decompressed here: httpx does both
  itself (``follow_redirects=``; its decoders read ``Content-Encoding``);
- httpx's ``timeout=`` is not applied: the service's ``ServicePolicy`` (``connect_timeout``,
  ``per_try_timeout``, ``timeout``) bounds the call, as for every other ``MeshClient`` call;
- the response streams: its ``stream`` reads the aiohttp response as the bytes arrive, and
  closing it (``aclose``, the end of ``client.stream(...)``, or httpx reading the whole body)
  releases the aiohttp response and with it the call's bulkhead and in-flight slots.

Errors become httpx's, the original kept as ``__cause__``:

- ``httpx.ConnectError``: no connection (refused, no route, DNS, a TLS handshake refused);
- ``httpx.ConnectTimeout``: no connection within the policy's connect bounds;
- ``httpx.ReadTimeout``: no response head, or a silence in the body, longer than
  ``per_try_timeout``;
- ``httpx.RemoteProtocolError``: the server closed the connection before the response was
  complete, or sent a malformed one;
- ``httpx.ReadError``: the connection was reset (aiohttp does not say whether while writing the
  request or reading the response);
- ``MeshCallRefused`` (an ``httpx.TransportError``): the mesh refused the call without sending
  it: the breaker is open, the bulkhead or per-instance limit is full, or the service has no
  instance (``resilience``'s ``CircuitOpen``, ``ServiceOverloaded``, ``NoInstanceAvailable``,
  ``NoLaneInstance``, as ``error``);
- ``MeshDeadlineExceeded`` (an ``httpx.TimeoutException``): the call's overall ``timeout``,
  retries included, passed;
- ``httpx.UnsupportedProtocol``: a scheme other than http, https or lb;
- ``httpx.TransportError``: any other aiohttp client error.

Why the mesh's refusals become httpx errors rather than staying ``resilience`` exceptions:
code written for httpx (and the libraries built on it) handles "the request could not be
made" as ``httpx.TransportError``/``httpx.RequestError``; an exception from outside that
hierarchy would escape handling that works with every other transport. They get classes of
their own rather than ``ConnectError``/``PoolTimeout`` because those would be false (nothing
failed on the network, nothing waited), and because a caller should not retry an open
breaker at once as it might a refused connection: ``retry_after`` carries the hint.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

import aiohttp
from yarl import URL

try:
    import httpx
except ImportError as exc:  # the optional extra is not installed
    raise ImportError(
        "discovery.mesh.httpx_transport needs httpx: pip install 'meshgate[httpx]'"
    ) from exc

from discovery.mesh.client import MeshClient, Response
from resilience.breaker import CircuitOpen
from resilience.errors import CallError, DeadlineExceeded, ServiceOverloaded

__all__ = ["MeshCallRefused", "MeshDeadlineExceeded", "MeshTransport"]

# The schemes MeshClient sends (others are refused before anything is read).
_SCHEMES = frozenset({"http", "https", "lb"})
# aiohttp's own defaults it would add when httpx's request lacks them: httpx set its own, or
# the caller removed them on purpose; and an in-memory body must not gain a Content-Type
# (application/octet-stream) that httpx did not send.
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


class MeshCallRefused(httpx.TransportError):
    """The mesh refused the call without sending anything: the service's breaker is open, its
    bulkhead or per-instance limit is full, or it has no instance (in its lane, for a strict
    one). ``error`` is the ``resilience`` exception (also ``__cause__``); ``retry_after``:
    its hint in seconds, when it has one."""

    def __init__(self, error: CallError, *, request: httpx.Request | None = None) -> None:
        super().__init__(str(error), request=request)
        self.error = error
        self.retry_after: float | None = (
            error.retry_after if isinstance(error, CircuitOpen | ServiceOverloaded) else None
        )


class MeshDeadlineExceeded(httpx.TimeoutException):
    """The call's overall deadline (``ServicePolicy.timeout``, retries included) passed before
    a response head. ``error`` is the ``DeadlineExceeded`` (also ``__cause__``)."""

    def __init__(self, error: DeadlineExceeded, *, request: httpx.Request | None = None) -> None:
        super().__init__(str(error), request=request)
        self.error = error


class MeshTransport(httpx.AsyncBaseTransport):
    """``httpx.AsyncClient(transport=MeshTransport(mesh))``: every request goes through
    ``mesh`` (see the module's docstring for what is carried and how errors map).

    ``mesh`` may be started later, by whoever owns it. ``owns_client``: the transport owns
    it: it starts it when entered (``async with httpx.AsyncClient(...)``) or at the first
    request (a client already started stays as it is), and closes it in ``aclose``."""

    def __init__(self, mesh: MeshClient, *, owns_client: bool = False) -> None:
        self.mesh = mesh
        self._owns_client = owns_client
        self._started = False
        self._closed = False
        self._starting = asyncio.Lock()

    async def __aenter__(self) -> Self:
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()

    async def _start(self) -> None:
        if not self._owns_client or self._started:
            return
        async with self._starting:  # concurrent first requests start it once
            if not self._started:
                await self.mesh.start()
                self._started = True

    async def aclose(self) -> None:
        if self._owns_client and not self._closed:
            self._closed = True
            await self.mesh.close()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in _SCHEMES:
            raise httpx.UnsupportedProtocol(
                f"{request.url.scheme!r} URLs are not sent: only http, https and lb",
                request=request,
            )
        await self._start()
        data, in_memory = await self._body(request)
        try:
            response = await self.mesh.request(
                request.method,
                # httpx's URL is already percent-encoded: yarl must not encode it again.
                URL(str(request.url), encoded=True),
                headers=_headers(request, in_memory),
                data=data,
                allow_redirects=False,  # httpx follows them (or not) itself
                auto_decompress=False,  # httpx decodes by Content-Encoding itself
                skip_auto_headers=_NO_AUTO_HEADERS,
            )
        except Exception as exc:  # not BaseException: a cancellation goes on as it is
            mapped = _httpx_error(exc, request)
            if mapped is None:
                raise
            raise mapped from exc
        extensions: dict[str, bytes] = {}
        version = response.version
        if version is not None:
            extensions["http_version"] = f"HTTP/{version.major}.{version.minor}".encode()
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("ascii", "replace")
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),  # bytes as received, repeated names kept
            stream=_ResponseStream(response, request),
            extensions=extensions,
            request=request,
        )

    async def _body(
        self, request: httpx.Request
    ) -> tuple[bytes | httpx.AsyncByteStream | None, bool]:
        """The body for aiohttp, and whether it is whole in memory (then a retry can resend
        it: ``MeshClient`` tells the two apart by the type of ``data``). None for an empty
        one: aiohttp would give a GET with ``b""`` a ``Content-Length: 0`` httpx never sent."""
        stream = request.stream
        if not isinstance(stream, httpx.AsyncByteStream):
            raise RuntimeError("Attempted to send a sync request with an AsyncClient instance.")
        if isinstance(stream, httpx.ByteStream) or _short(request, self._replay_limit()):
            return (await request.aread()) or None, True
        return stream, False

    def _replay_limit(self) -> int:
        return self.mesh.runtimes.settings.retry_max_body


def _short(request: httpx.Request, limit: int) -> bool:
    """A streamed body that says it is at most ``limit`` bytes: cheap to keep for a retry."""
    length = request.headers.get("content-length")
    return length is not None and length.isdigit() and int(length) <= limit


def _headers(request: httpx.Request, in_memory: bool) -> list[tuple[str, str]]:
    """httpx's headers for aiohttp, names as written, repeated ones kept, less what aiohttp
    sets itself."""
    headers = request.headers
    encoding = headers.encoding
    derived_host = request.url.netloc.decode("ascii")
    out: list[tuple[str, str]] = []
    for raw_name, raw_value in headers.raw:
        name, value = raw_name.decode(encoding), raw_value.decode(encoding)
        lowered = name.lower()
        if lowered == "host" and value == derived_host:
            continue  # the URL's host is a service name: aiohttp names the instance instead
        if lowered == "transfer-encoding" or (lowered == "content-length" and in_memory):
            continue  # aiohttp frames the body: chunked when unsized, else by its length
        out.append((name, value))
    return out


def _httpx_error(exc: Exception, request: httpx.Request) -> httpx.TransportError | None:
    """httpx's exception for one raised by the mesh call or its body (None: not one of ours,
    raised as it is). Order matters: aiohttp's classes nest."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, DeadlineExceeded):
        return MeshDeadlineExceeded(exc, request=request)
    if isinstance(exc, CallError):
        return MeshCallRefused(exc, request=request)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, TimeoutError):  # aiohttp's sock_read (ServerTimeoutError), or ours
        return httpx.ReadTimeout(message, request=request)
    if isinstance(
        exc,
        aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError,
    ):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectionError):  # a reset, a closed connection
        return httpx.ReadError(message, request=request)
    if isinstance(exc, aiohttp.ClientError):
        return httpx.TransportError(message, request=request)
    return None


class _ResponseStream(httpx.AsyncByteStream):
    """The aiohttp response's body as httpx reads it; ``aclose`` releases the response, and
    with it the call's slots (``MeshClient`` frees them when aiohttp lets go of the
    connection: at the body's end, or when an unfinished one is dropped)."""

    def __init__(self, response: Response, request: httpx.Request) -> None:
        self._response = response
        self._request = request
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except Exception as exc:
            mapped = _httpx_error(exc, self._request)
            await self.aclose()  # a broken body: its connection and slots go now
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._response.release()
            await self._response.wait_for_close()
