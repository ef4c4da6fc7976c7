"""The front door under fuzzed input, against the real process: whatever bytes arrive, the
gateway answers with a 4xx (or nothing, for a request still incomplete), never a 5xx of its
own, no worker dies, nothing is logged as unhandled, and the next client is served.

The examples are mutations of well-formed requests (bytes inserted, replaced, deleted,
duplicated, cut) and sequences of request fragments, so most of them get past the first
bytes and into the framing, header and path rules, where the interesting bugs are.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.gateway import GatewayProcess, spawn_gateway
from tests.support.raw_http import exchange_raw, status_of

TEMPLATES = [
    b"GET /a/b?c=d HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET /public/../admin HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
    b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"GET /a HTTP/1.0\r\n\r\n",
]
# Bytes that mean something to an HTTP parser, and a few that mean nothing.
SPECIAL = [
    b"\r\n", b"\n", b"\r", b"\x00", b" ", b"\t", b":", b",", b";", b"%", b"%2f", b"%2e", b"..",
    b"/", b"\\", b"?", b"#", b"0", b"9", b"-", b"+", b"x", b"\x7f", b"\xff", b"chunked",
    b"Content-Length: 3\r\n", b"Transfer-Encoding: chunked\r\n", b"Host: y\r\n", b"HTTP/1.1",
    b"\r\n\r\n",
]  # fmt: skip

FRAGMENTS = [
    b"GET ", b"POST ", b"/", b"/a?b=c", b" HTTP/1.1\r\n", b" HTTP/1.0\r\n", b"Host: x\r\n",
    b"Content-Length: 3\r\n", b"Content-Length: -1\r\n", b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n", b"Expect: 100-continue\r\n", b"\r\n", b"abc", b"3\r\nabc\r\n",
    b"0\r\n\r\n", b"\x00", b"%2e%2e/",
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "replace", "delete", "repeat", "cut"]))
        piece = draw(st.sampled_from(SPECIAL) | st.binary(min_size=1, max_size=3))
        if kind == "insert":
            data[at:at] = piece
        elif kind == "replace":
            data[at : at + len(piece)] = piece
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 4))]
        elif kind == "repeat":
            data[at:at] = data[max(0, at - 8) : at]
        else:
            del data[at:]
    return bytes(data)


REQUESTS = st.one_of(
    mutated(),
    st.lists(st.sampled_from(FRAGMENTS), max_size=14).map(b"".join),
    st.binary(max_size=200),
)

# A gateway-made error body (the upstream answers every request it gets with 200).
_GATEWAY_5XX = re.compile(rb'"status":\s*5\d\d')
_SPOKEN = re.compile(rb"^[^\r\n]* HTTP/1\.[01]\r?\n")
# A request line that names a version (one without is malformed: 400).
_VERSION = re.compile(rb" HTTP/\d\.\d\r?$")


class _Answer200(BaseHTTPRequestHandler):
    """The upstream: 200 to whatever the gateway forwards, so any 5xx is the gateway's."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class FrontDoor:
    gateway: GatewayProcess
    workers: list[int]


@pytest.fixture(scope="module")
def front_door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoor]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Answer200)
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    tmp_path = tmp_path_factory.mktemp("fuzz")
    config = tmp_path / "routes.yml"
    config.write_text(
        f"""
        routes:
          - id: all
            uri: http://127.0.0.1:{upstream.server_address[1]}
            predicates: [Path=/**]
        """
    )
    gateway = spawn_gateway(
        config,
        tmp_path,
        GATEWAY_WORKERS="2",
        GATEWAY_HEADER_TIMEOUT="1s",
        GATEWAY_ACCESS_LOG="false",
    )
    try:
        workers = sorted(gateway.worker_pids())
        assert len(workers) == 2
        yield FrontDoor(gateway, workers)
    finally:
        gateway.stop()
        upstream.shutdown()


@pytest.mark.slow
# The same examples on every run (CI must not fail by luck); run it with more examples and
# derandomize off to explore (1,500 random ones pass).
@settings(
    max_examples=250,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=REQUESTS)
async def test_fuzzed_requests_get_4xx_never_a_5xx(front_door: FrontDoor, data: bytes) -> None:
    response = await exchange_raw(front_door.gateway.port, data, timeout=0.3)
    if not response or response == b"<timeout>":
        return  # incomplete: nothing to answer yet (or closed at once)
    assert response.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), (data, response[:80])
    status = status_of(response)
    if status == 505:
        # Only a version we do not speak; any other 5xx is the gateway's and a bug.
        assert _SPOKEN.match(data.lstrip(b"\r\n")) is None, data
        assert _VERSION.search(data.lstrip(b"\r\n").split(b"\n", 1)[0]) is not None, data
        return
    assert status < 500, (data, response[:300])
    assert _GATEWAY_5XX.search(response) is None, (data, response[:300])


@pytest.mark.slow
async def test_after_the_fuzzing_every_worker_is_the_same_and_serving(
    front_door: FrontDoor,
) -> None:
    ok = await exchange_raw(
        front_door.gateway.port, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status_of(ok) == 200
    assert sorted(front_door.gateway.worker_pids()) == front_door.workers, "a worker died"
    log = front_door.gateway.log()
    for sign in ("Traceback", "Exception in callback", "Unhandled", "exited with"):
        assert sign not in log, log[-3000:]
