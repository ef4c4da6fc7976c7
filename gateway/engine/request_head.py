"""The request head being parsed, and the ``Exchange`` it becomes: validated and normalised once,
at the front door, so everything after it routes on the same reading of the request as the
upstream will get."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

import httptools

from gateway.engine.framing import Framing, normalize_path, request_framing
from gateway.errors import BadRequest, GatewayError
from gateway.exchange import Exchange, Request
from gateway.headers import Headers

# A client-supplied X-Request-Id is kept only when it is a plain token of sane length.
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")


def _version_not_supported() -> GatewayError:
    # llhttp reads any digit.digit version; only HTTP/1.0 and 1.1 are spoken here (an
    # "HTTP/2.0" request line is no HTTP/2, and must not be answered as if it were 1.1).
    error = GatewayError("only HTTP/1.0 and HTTP/1.1 are supported", status=505)
    error.error = "HTTP Version Not Supported"
    return error


_DEFAULT_PORTS = {b"http": b":80", b"https": b":443"}


class _Target(Protocol):
    """What ``httptools.parse_url`` returns as it is: a part the target lacks is None (the
    package's stub says bytes and int, which code compiled with mypyc would check)."""

    @property
    def schema(self) -> bytes | None: ...
    @property
    def host(self) -> bytes | None: ...
    @property
    def port(self) -> int | None: ...
    @property
    def path(self) -> bytes | None: ...
    @property
    def query(self) -> bytes | None: ...
    @property
    def userinfo(self) -> bytes | None: ...


def _absolute_form_host(url: _Target, scheme: bytes, host: bytes | None) -> bytes:
    """The host of an absolute-form target (``GET http://billing/x``, what a client sends to
    a proxy): its authority, which RFC 9112 §3.2.2 puts before the Host field. A Host that
    says otherwise is refused rather than one of them picked: a route would match one and a
    reader behind us could take the other."""
    scheme = scheme.lower()
    if scheme not in _DEFAULT_PORTS or not url.host:
        raise BadRequest("an absolute-form request target must be an http or https URL")
    if url.userinfo:
        raise BadRequest("user info in the request target is not allowed")
    name = b"[" + url.host + b"]" if b":" in url.host else url.host
    authority = name + (b":%d" % url.port if url.port else b"")
    if host is not None:
        default = _DEFAULT_PORTS[scheme]
        given, named = host.lower(), authority.lower()
        if given.removesuffix(default) != named.removesuffix(default):
            raise BadRequest("the Host header does not match the request target's authority")
        return host
    return authority


class RequestHead:
    """What the parser's callbacks collect for one request head (filled in place by the
    connection, which checks the limits as the pieces arrive)."""

    __slots__ = ("fields", "host", "request_id", "target", "target_len")

    def __init__(self) -> None:
        self.target: list[bytes] = []  # the request target, in the pieces llhttp gave it
        self.target_len = 0
        self.fields: list[tuple[bytes, bytes]] = []
        # Two fields the engine needs itself, caught as they arrive instead of another pass.
        self.host: bytes | None = None
        self.request_id: bytes | None = None

    def size(self) -> int:
        """Bytes of target and fields, as the head-size limit counts them."""
        return self.target_len + sum(len(n) + len(v) + 4 for n, v in self.fields)

    def exchange(
        self,
        method: bytes,
        version: bytes,
        client: tuple[str, int],
        server: tuple[str, int],
        scheme: str,
        new_id: Callable[[], str],
        allow_encoded_slash: bool = False,
    ) -> tuple[Exchange, Framing]:
        """The exchange this head describes and how its body is framed; its request id is the
        client's X-Request-Id when that is a sane token, else ``new_id()``.

        Raises ``GatewayError`` for what must not pass: an HTTP version other than 1.0 and 1.1
        (505); ambiguous framing, chunked HTTP/1.0, an HTTP/1.1 request without Host, CONNECT,
        an asterisk-form target on anything but OPTIONS, an invalid or ambiguous path (400).
        ``allow_encoded_slash`` lets ``%2F``/``%5C`` and encoded dot-segments through (see
        ``normalize_path``).
        """
        if version != b"1.1" and version != b"1.0":
            if version == b"0.9":
                # llhttp's reading of a request line with no version at all ("GET /"):
                # malformed, not a version to negotiate.
                raise BadRequest("the request line has no HTTP version")
            raise _version_not_supported()
        fields = self.fields
        framing = request_framing(fields)
        if framing.chunked and version == b"1.0":
            # RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty.
            raise BadRequest("Transfer-Encoding is not allowed in an HTTP/1.0 request")
        host = self.host
        if host is None and version == b"1.1":
            raise BadRequest("an HTTP/1.1 request needs a Host header")  # RFC 9112 §3.2
        try:
            url: _Target = httptools.parse_url(b"".join(self.target))
        except httptools.HttpParserInvalidURLError as exc:
            raise BadRequest("invalid request target") from exc
        if url.schema is not None:
            host = _absolute_form_host(url, url.schema, host)
        raw_path = (url.path or b"/").decode("latin-1")
        if method == b"CONNECT":
            raise BadRequest("CONNECT is not supported")
        if raw_path == "*" and method != b"OPTIONS":
            raise BadRequest("asterisk-form target is only valid with OPTIONS")
        try:
            path = raw_path if raw_path == "*" else normalize_path(raw_path, allow_encoded_slash)
        except GatewayError as exc:
            exc.path = raw_path  # the error body says which path was refused
            raise
        query = url.query.decode("latin-1") if url.query else ""
        request = Request(method.decode("latin-1"), path, query, Headers(fields), version.decode())
        client_id = self.request_id
        exchange = Exchange(
            request=request,
            client_host=client[0],
            client_port=client[1],
            server_host=server[0],
            server_port=server[1],
            scheme=scheme,
            request_id=client_id.decode("ascii")
            if client_id is not None and _REQUEST_ID.fullmatch(client_id)
            else new_id(),
            original_path=path,
            original_host=host.decode("latin-1") if host is not None else None,
        )
        return exchange, framing
