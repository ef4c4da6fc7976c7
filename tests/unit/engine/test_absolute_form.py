"""An absolute-form request target (``GET http://billing/x``, what a client sends a proxy):
its authority is the request's host (RFC 9112 §3.2.2); a Host field that contradicts it, a
scheme other than http(s) and user info are refused."""

from __future__ import annotations

import pytest

from gateway.engine.request_head import RequestHead
from gateway.errors import BadRequest
from gateway.exchange import Exchange


def _exchange(target: bytes, host: bytes | None, version: bytes = b"1.1") -> Exchange:
    head = RequestHead()
    head.target.append(target)
    head.target_len = len(target)
    if host is not None:
        head.fields.append((b"Host", host))
        head.host = host
    exchange, _ = head.exchange(
        b"GET", version, ("127.0.0.1", 1), ("127.0.0.1", 2), "http", lambda: "id"
    )
    return exchange


@pytest.mark.parametrize(
    ("target", "host"),
    [
        (b"http://billing/x?a=1", b"billing"),
        (b"http://billing/x?a=1", b"BILLING"),  # host names compare case-insensitively
        (b"http://billing:80/x?a=1", b"billing"),  # the scheme's default port is no port
        (b"http://billing/x?a=1", b"billing:80"),
    ],
)
def test_a_host_that_agrees_is_kept(target: bytes, host: bytes) -> None:
    exchange = _exchange(target, host)
    assert exchange.original_host == host.decode()
    assert exchange.request.path == "/x"
    assert exchange.request.query == "a=1"


def test_without_host_the_authority_is_the_host() -> None:
    exchange = _exchange(b"http://billing:8080/x", None, b"1.0")
    assert exchange.original_host == "billing:8080"
    assert exchange.request.path == "/x"


@pytest.mark.parametrize(
    ("target", "host", "message"),
    [
        (b"http://billing/x", b"orders", "does not match"),
        (b"http://billing:8080/x", b"billing", "does not match"),
        (b"https://billing/x", b"billing:80", "does not match"),
        (b"ftp://billing/x", b"billing", "http or https"),
        (b"http://user:pw@billing/x", b"billing", "user info"),
    ],
)
def test_refused(target: bytes, host: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        _exchange(target, host)
    assert message in refused.value.message


def test_origin_form_is_untouched() -> None:
    exchange = _exchange(b"/x", b"anything")
    assert exchange.original_host == "anything"
