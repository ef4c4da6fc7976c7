"""LocalResponseCache (per route and global), CacheRequestBody and
RemoveJsonAttributesResponseBody through the running gateway, against real upstreams on
127.0.0.1. What each test expects is what Spring Cloud Gateway 5.0.4 answered to the same
requests (see the filter modules for the list); differences are commented where they occur.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

from tests.conftest import MakeGateway
from tests.support.echoed import call, get
from tests.support.raw_http import exchange_raw, status_of
from tests.support.upstream import Upstream, serve


@dataclass
class Counting:
    """An upstream that counts the requests per path and answers as the query asks:
    ``status``, ``cc`` (Cache-Control), ``vary``, ``ct`` (Content-Type), ``body``, ``size``
    (that many ``x``), ``gzip=1``, ``chunked=1``, ``pragma``."""

    url: str
    calls: dict[str, int] = field(default_factory=dict)
    bodies: dict[str, list[bytes]] = field(default_factory=dict)

    def count(self, path: str) -> int:
        return self.calls.get(path, 0)


@pytest.fixture
async def counting() -> AsyncIterator[Counting]:
    state = Counting("")

    async def answer(request: web.Request) -> web.StreamResponse:
        path = request.path
        state.calls[path] = state.count(path) + 1
        state.bodies.setdefault(path, []).append(await request.read())
        query = request.query
        headers = {"X-Count": str(state.calls[path]), "Content-Type": query.get("ct", "text/plain")}
        for name, key in (("Cache-Control", "cc"), ("Vary", "vary"), ("Pragma", "pragma")):
            if key in query:
                headers[name] = query[key]
        payload = query.get("body", f"n={state.calls[path]}").encode()
        if "size" in query:
            payload = b"x" * int(query["size"])
        if query.get("gzip"):
            payload = gzip.compress(payload)
            headers["Content-Encoding"] = "gzip"
        status = int(query.get("status", "200"))
        if query.get("chunked"):
            response = web.StreamResponse(status=status, headers=headers)
            response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(payload[:3])
            await response.write(payload[3:])
            await response.write_eof()
            return response
        return web.Response(status=status, body=payload, headers=headers)

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", answer)
    runner, port = await serve(app)
    state.url = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


def routes(uri: str, *filters: str, path: str = "/**", route_id: str = "r", extra: str = "") -> str:
    lines = "\n".join(f"      - {f}" for f in filters)
    return f"""
{extra}routes:
  - id: {route_id}
    uri: {uri}
    predicates:
      - Path={path}
    filters:
{lines}
"""


async def fetch(
    session: aiohttp.ClientSession, url: str, method: str = "GET", **kwargs: Any
) -> tuple[int, CIMultiDictProxy[str], bytes]:
    """Status, headers and body of one request."""
    async with session.request(method, url, allow_redirects=False, **kwargs) as resp:
        return resp.status, resp.headers, await resp.read()


# -- LocalResponseCache ---------------------------------------------------------------------------
async def test_a_hit_skips_the_upstream_and_keeps_the_route_filters_headers(
    counting: Counting, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        routes(counting.url, "AddResponseHeader=X-Added, yes", "LocalResponseCache=30s,1MB")
    )
    seen = []
    for _ in range(2):
        status, headers, body = await fetch(session, f"{gw.url}/c/a?pragma=no-cache")
        seen.append((status, body, headers.get("X-Count"), headers.get("X-Added")))
        assert headers.getall("Cache-Control") == ["max-age=30"] or headers.getall(
            "Cache-Control"
        ) == ["max-age=29"]  # a wall-clock second may tick between the two
        assert "Pragma" not in headers and "Age" not in headers
    assert seen == [(200, b"n=1", "1", "yes")] * 2
    assert counting.count("/c/a") == 1
    # query is part of the key; HEAD and POST are never cached
    await fetch(session, f"{gw.url}/c/a?pragma=no-cache&other=1")
    assert counting.count("/c/a") == 2
    for method in ("HEAD", "POST"):
        for _ in range(2):
            await fetch(session, f"{gw.url}/c/{method}", method)
        assert counting.count(f"/c/{method}") == 2


async def test_request_cache_control_and_statuses(
    counting: Counting, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes(counting.url, "LocalResponseCache=30s"))
    await fetch(session, f"{gw.url}/nc")
    _, headers, body = await fetch(session, f"{gw.url}/nc", headers={"Cache-Control": "no-cache"})
    # revalidated upstream; with SCG's default strategy the fresh answer is passed on as it is
    assert (body, headers.get("Cache-Control")) == (b"n=2", None)
    assert (await fetch(session, f"{gw.url}/nc"))[2] == b"n=1"
    await fetch(session, f"{gw.url}/ns", headers={"Cache-Control": "no-store"})
    assert (await fetch(session, f"{gw.url}/ns"))[2] == b"n=2"  # the no-store one was not kept
    for code, cached in ((206, True), (301, True), (302, False), (404, False)):
        for _ in range(2):
            await fetch(session, f"{gw.url}/st{code}?status={code}")
        assert counting.count(f"/st{code}") == (1 if cached else 2), code
    for _ in range(2):
        await fetch(session, f"{gw.url}/priv?cc=private")
    assert counting.count("/priv") == 2


async def test_vary_and_authorization_split_the_entries(
    counting: Counting, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes(counting.url, "LocalResponseCache=30s"))
    bodies = [
        (await fetch(session, f"{gw.url}/v?vary=Accept", headers=h))[2]
        for h in ({"Accept": "a"}, {"Accept": "b"}, {"Accept": "a"}, {"Accept": "b"})
    ]
    assert bodies == [b"n=1", b"n=2", b"n=1", b"n=2"]
    bodies = [
        (await fetch(session, f"{gw.url}/auth", headers=h))[2]
        for h in ({"Authorization": "a"}, {"Authorization": "b"}, {"Authorization": "a"})
    ]
    assert bodies == [b"n=1", b"n=2", b"n=1"]


async def test_size_bounds_what_is_kept_and_a_chunked_answer_is_kept_too(
    counting: Counting, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes(counting.url, "LocalResponseCache=30s,2KB"))
    for _ in range(2):
        status, _, body = await fetch(session, f"{gw.url}/big?size=3000")
        assert (status, len(body)) == (200, 3000)
    assert counting.count("/big") == 2
    answers = [await fetch(session, f"{gw.url}/chunked?size=900&chunked=1") for _ in range(2)]
    assert [len(body) for _, _, body in answers] == [900, 900]
    assert counting.count("/chunked") == 1
    # meshgate sends a kept body with its length (SCG kept the upstream's chunked framing)
    assert answers[1][1].get("Content-Length") == "900"


async def test_the_global_cache_covers_every_route_and_is_shared(
    counting: Counting, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        spring:
          cloud:
            gateway:
              filter:
                local-response-cache:
                  enabled: true
                  time-to-live: 20s
              routes:
                - id: ga
                  uri: {counting.url}
                  predicates: [Path=/g/**, "Header=X-R, a"]
                  filters: ["AddResponseHeader=X-Route, ga"]
                - id: gb
                  uri: {counting.url}
                  predicates: [Path=/g/**]
                  filters: ["AddResponseHeader=X-Route, gb"]
                - id: own
                  uri: {counting.url}
                  predicates: [Path=/own/**]
                  filters: [LocalResponseCache=30s]
        """
    )
    first = await fetch(session, f"{gw.url}/g/b")
    assert first[1].get("Cache-Control") == "max-age=20" and first[1].get("X-Route") == "gb"
    # SCG keys the global cache by URL: route ga is answered with what gb kept
    second = await fetch(session, f"{gw.url}/g/b", headers={"X-R": "a"})
    assert (second[1].get("X-Route"), counting.count("/g/b")) == ("gb", 1)
    own = [await fetch(session, f"{gw.url}/own/x") for _ in range(2)]
    assert own[0][1].get("Cache-Control") == "max-age=30"  # the route's own time to live
    assert counting.count("/own/x") == 1
    for _ in range(2):
        await fetch(session, f"{gw.url}/g/post", "POST")
    assert counting.count("/g/post") == 2


# -- CacheRequestBody ----------------------------------------------------------------------------
CACHE_BODY = """
      - name: CacheRequestBody
        args:
          bodyClass: java.lang.String"""


async def test_cache_request_body_forwards_the_body_intact(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes(upstream.url) + CACHE_BODY)
    answer = await call(session, "POST", f"{gw.url}/post", data=b"hello world")
    assert (answer.report["body"], answer.request_headers.get("Content-Length")) == (
        "hello world",
        "11",
    )
    # a chunked body stays chunked, as SCG sends it
    reply = await exchange_raw(
        gw.port,
        b"POST /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
    )
    assert status_of(reply) == 200
    report = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    headers = {k.lower(): v for k, v in report["headers"]}
    assert (report["body"], headers.get("transfer-encoding")) == ("abcdef", "chunked")
    empty = await get(session, f"{gw.url}/get")
    assert empty.report["body_length"] == 0


async def test_a_cached_body_is_sent_again_by_a_retry(
    make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    seen: list[bytes] = []

    async def flaky(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.Response(status=503 if len(seen) == 1 else 200, body=seen[-1])

    app = web.Application()
    app.router.add_post("/{tail:.*}", flaky)
    runner, port = await serve(app)
    try:
        gw = await make_gateway(
            routes(f"http://127.0.0.1:{port}", "Retry=2,SERVICE_UNAVAILABLE,POST") + CACHE_BODY
        )
        status, _, body = await fetch(session, f"{gw.url}/p", "POST", data=b"payload")
        assert (status, body, seen) == (200, b"payload", [b"payload", b"payload"])
    finally:
        await runner.cleanup()


async def test_a_body_over_the_limit_is_413(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    # SCG's codec stops at 256 KiB with a 500; meshgate keeps up to GATEWAY_RETRY_MAX_BODY
    # and answers 413 with its JSON error body.
    gw = await make_gateway(routes(upstream.url) + CACHE_BODY, retry_max_body=1000)
    status, _, body = await fetch(session, f"{gw.url}/post", "POST", data=b"x" * 1001)
    assert status == 413 and json.loads(body)["status"] == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"y" * 600

    status, _, _ = await fetch(session, f"{gw.url}/post", "POST", data=chunks())
    assert status == 413
    ok = await call(session, "POST", f"{gw.url}/post", data=b"z" * 1000)
    assert ok.report["body_length"] == 1000


# -- RemoveJsonAttributesResponseBody ----------------------------------------------------------
DOC = '{"id":1,"color":"red","name":"x","nested":{"id":2,"color":"b","k":3}}'


async def test_json_attributes_are_removed_at_the_root_or_everywhere(
    counting: Counting, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: root
            uri: {counting.url}
            predicates: [Path=/root/**]
            filters: ["RemoveJsonAttributesResponseBody=id,color"]
          - id: deep
            uri: {counting.url}
            predicates: [Path=/deep/**]
            filters: ["RemoveJsonAttributesResponseBody=id,color,true"]
        """
    )
    params = {"body": DOC, "ct": "application/json"}
    status, headers, body = await fetch(session, f"{gw.url}/root/a", params=params)
    assert status == 200
    assert body == b'{"name":"x","nested":{"id":2,"color":"b","k":3}}'
    assert headers.get("Content-Length") == str(len(body))
    _, headers, body = await fetch(session, f"{gw.url}/deep/a", params=params)
    assert body == b'{"name":"x","nested":{"k":3}}'
    # chunked from the upstream: a Content-Length to the client, as SCG sends it
    _, headers, body = await fetch(session, f"{gw.url}/root/c", params={**params, "chunked": "1"})
    assert (body, headers.get("Content-Length")) == (
        b'{"name":"x","nested":{"id":2,"color":"b","k":3}}',
        "48",
    )
    # gzip: decoded, edited, encoded again
    _, headers, body = await fetch(session, f"{gw.url}/root/g", params={**params, "gzip": "1"})
    assert headers.get("Content-Encoding") == "gzip"
    assert gzip.decompress(body) == b'{"name":"x","nested":{"id":2,"color":"b","k":3}}'
    # other media types pass through untouched
    for ct in ("text/plain", "application/problem+json"):
        _, _, body = await fetch(session, f"{gw.url}/root/t", params={"body": DOC, "ct": ct})
        assert body == DOC.encode()


async def test_malformed_json_is_a_500(
    counting: Counting, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes(counting.url, "RemoveJsonAttributesResponseBody=id"))
    status, headers, body = await fetch(
        session, f"{gw.url}/bad", params={"body": '{"id":1, bad', "ct": "application/json"}
    )
    assert status == 500 and headers.get("Content-Type") == "application/json"
    assert json.loads(body)["status"] == 500


async def test_the_cache_keeps_the_edited_body(
    counting: Counting, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    # Listed in this order, SCG still runs the cache (-4) outside the JSON filter (-2).
    gw = await make_gateway(
        routes(counting.url, "RemoveJsonAttributesResponseBody=id", "LocalResponseCache=30s")
    )
    params = {"body": '{"id":1,"name":"x"}', "ct": "application/json"}
    bodies = [(await fetch(session, f"{gw.url}/j", params=params))[2] for _ in range(2)]
    assert bodies == [b'{"name":"x"}'] * 2 and counting.count("/j") == 1
