"""Differential correctness: the same generated requests sent straight to an upstream and
through the gateway must reach the upstream, and come back to the client, the same — apart
from the changes the gateway documents (Host, X-Forwarded-*/Forwarded, hop-by-hop fields,
framing re-chosen, HTTP/1.1 towards the upstream).

The upstream is a raw asyncio server parsing with httptools, so what it records is exactly
what arrived on the wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import MakeGateway
from tests.support.gateway import RunningGateway

GATEWAY_ADDED = {b"host", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"}
GATEWAY_ADDED |= {b"x-forwarded-port", b"x-forwarded-prefix", b"forwarded", b"x-request-id"}
FRAMING = {b"content-length", b"transfer-encoding", b"connection", b"keep-alive"}


@dataclass
class Seen:
    method: bytes
    url: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""


@dataclass
class RecordingUpstream:
    seen: list[Seen] = field(default_factory=list)
    port: int = 0


class _UpstreamProtocol(asyncio.Protocol):
    """Echoes each request: status from ``X-Status``, the request body back (or chunked when
    ``X-Chunked`` is set), and a header naming the method."""

    def __init__(self, record: RecordingUpstream) -> None:
        self.record = record
        self.parser = httptools.HttpRequestParser(self)
        self.current: Seen | None = None
        self.url = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.current = Seen(b"", b"", [])

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        self.current.headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self.current is not None
        self.current.method = self.parser.get_method()
        self.current.url = self.url

    def on_body(self, body: bytes) -> None:
        assert self.current is not None
        self.current.body += body

    def on_message_complete(self) -> None:
        seen = self.current
        assert seen is not None and self.transport is not None
        self.record.seen.append(seen)
        fields = {name.lower(): value for name, value in seen.headers}
        status = int(fields.get(b"x-status", b"200"))
        payload = b"echo:" + seen.body
        head = b"HTTP/1.1 %d Whatever\r\nX-Method: %s\r\n" % (status, seen.method)
        if seen.method == b"HEAD" or status in (204, 304):
            self.transport.write(head + b"Content-Length: %d\r\n\r\n" % len(payload))
        elif b"x-chunked" in fields:
            self.transport.write(
                head + b"Transfer-Encoding: chunked\r\n\r\n"
                b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
            )
        else:
            self.transport.write(head + b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))


@pytest.fixture
async def recording_upstream() -> AsyncIterator[RecordingUpstream]:
    record = RecordingUpstream()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _UpstreamProtocol(record), "127.0.0.1", 0)
    record.port = server.sockets[0].getsockname()[1]
    yield record
    server.close()


@dataclass
class Got:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


async def _read_response(reader: asyncio.StreamReader, method: bytes) -> Got:
    """One response, read exactly (so pipelined responses split right), framing by the
    rules: no body after HEAD/1xx/204/304, else Content-Length, chunked, or until close."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = [tuple(line.split(b": ", 1)) for line in lines[1:]]
    fields = {name.lower(): value for name, value in headers}
    if method == b"HEAD" or status in (204, 304) or status < 200:
        body = b""
    elif b"content-length" in fields:
        body = await reader.readexactly(int(fields[b"content-length"]))
    elif fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    else:
        body = await reader.read(-1)
    return Got(status, [(h[0], h[1]) for h in headers], body)


async def _exchange(port: int, data: bytes, methods: list[bytes]) -> list[Got]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        async with asyncio.timeout(5):
            return [await _read_response(reader, method) for method in methods]
    finally:
        writer.close()


TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=10).map(
    lambda s: "x-" + s.strip("-") if s.strip("-") else "x-h"
)
VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20).map(
    str.strip
)


@dataclass(frozen=True)
class GenRequest:
    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    chunked: bool
    version: str
    status: int
    chunked_response: bool

    def render(self, last: bool) -> bytes:
        target = self.path + (f"?{self.query}" if self.query else "")
        lines = [f"{self.method} {target} HTTP/{self.version}", "Host: differential"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines.append(f"X-Status: {self.status}")
        if self.chunked_response:
            lines.append("X-Chunked: 1")
        if self.version == "1.0" and not last:
            lines.append("Connection: keep-alive")
        elif self.version == "1.1" and last:
            lines.append("Connection: close")
        body = b""
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            if self.chunked and self.version == "1.1":
                lines.append("Transfer-Encoding: chunked")
                half = len(self.body) // 2
                parts = [p for p in (self.body[:half], self.body[half:]) if p]
                body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
            else:
                lines.append(f"Content-Length: {len(self.body)}")
                body = self.body
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


requests = st.builds(
    GenRequest,
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    path=st.lists(st.text(alphabet="abcxyz019-._~", min_size=1, max_size=6), max_size=3).map(
        lambda parts: "/" + "/".join(p for p in parts if p not in (".", ".."))
    ),
    query=st.sampled_from(["", "a=1", "a=1&b=%20x", "flag", "x=%2F"]),
    headers=st.lists(st.tuples(TOKEN, VALUE), max_size=4, unique_by=lambda h: h[0]).map(tuple),
    body=st.binary(max_size=300),
    chunked=st.booleans(),
    version=st.sampled_from(["1.1", "1.1", "1.0"]),
    status=st.sampled_from([200, 201, 204, 302, 404, 500]),
    chunked_response=st.booleans(),
)


def _comparable_request(seen: Seen) -> tuple[bytes, bytes, bytes, list[tuple[bytes, bytes]]]:
    headers = sorted(
        (n.lower(), v) for n, v in seen.headers if n.lower() not in GATEWAY_ADDED | FRAMING
    )
    return seen.method, seen.url, seen.body, headers


def _comparable_response(got: Got) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    headers = sorted(
        (n.lower(), v) for n, v in got.headers if n.lower() not in FRAMING | {b"x-request-id"}
    )
    return got.status, got.body, headers


@pytest.fixture
async def differential_gateway(
    recording_upstream: RecordingUpstream, make_gateway: MakeGateway
) -> RunningGateway:
    return await make_gateway(
        f"routes: [{{id: all, uri: 'http://127.0.0.1:{recording_upstream.port}'}}]"
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(requests, min_size=1, max_size=3))
async def test_gateway_is_transparent(
    batch: list[GenRequest],
    recording_upstream: RecordingUpstream,
    differential_gateway: RunningGateway,
) -> None:
    # HTTP/1.0 can't pipeline a body-less response safely past a close; keep batches simple.
    if any(r.version == "1.0" for r in batch):
        batch = batch[:1]
    data = b"".join(r.render(last=i == len(batch) - 1) for i, r in enumerate(batch))
    methods = [r.method.encode() for r in batch]

    recording_upstream.seen.clear()
    direct = await _exchange(recording_upstream.port, data, methods)
    seen_direct = list(recording_upstream.seen)
    recording_upstream.seen.clear()
    via = await _exchange(differential_gateway.port, data, methods)
    seen_via = list(recording_upstream.seen)

    assert [_comparable_request(s) for s in seen_via] == [
        _comparable_request(s) for s in seen_direct
    ]
    assert [_comparable_response(g) for g in via] == [_comparable_response(g) for g in direct]
    for seen in seen_via:  # and the gateway's documented additions are there
        names = {n.lower() for n, _ in seen.headers}
        assert {b"host", b"x-forwarded-for", b"forwarded", b"x-request-id"} <= names
    for got in via:  # the request id goes back to the client too
        assert any(n.lower() == b"x-request-id" for n, _ in got.headers)
