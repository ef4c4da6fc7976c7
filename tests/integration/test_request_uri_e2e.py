"""``uri: no://op``, SetRequestUri and RequestHeaderToRequestUri through the running gateway,
against real upstreams on 127.0.0.1.

Every expectation here was first observed on SCG 5.0.4 (the bench's scg-peer.jar) with the same
route and request; where meshgate answers differently on purpose it says so. The echo upstream
reports the path, query and headers it received.
"""

from __future__ import annotations

import logging

import aiohttp
import pytest

from tests.conftest import MakeGateway
from tests.support.echoed import Echoed, call, get
from tests.support.gateway import RunningGateway
from tests.support.upstream import Upstream


def routes(*entries: str) -> str:
    return "routes:\n" + "".join(entries)


def route(route_id: str, uri: str, path: str, *filters: str) -> str:
    """One route of a ``routes:`` list; predicate and filters in YAML's single quotes."""
    listed = "".join(f"\n      - {f!r}" for f in filters) or " []"
    head = f"  - id: {route_id}\n    uri: {uri}\n    predicates:\n      - {path!r}\n"
    return f"{head}    filters:{listed}\n"


def sent(answer: Echoed) -> str:
    """The request target the upstream received: path and query, as sent."""
    return str(answer.report["raw_path"])


def assert_not_routed(answer: Echoed) -> None:
    """SCG's answer when nothing sends the request: 200, an empty body, no upstream."""
    assert answer.status == 200
    assert answer.body == b""
    assert answer.headers["Content-Length"] == "0"
    assert answer.report == {}


# -- no://op -----------------------------------------------------------------------------------


async def test_no_op_routes_load_beside_others_and_filters_answer(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        routes(
            route("status", "no://op", "Path=/teapot", "SetStatus=418"),
            route("redirect", "no://op", "Path=/moved", "RedirectTo=302, /elsewhere"),
            route("header", "no://op", "Path=/header", "AddResponseHeader=X-A, b"),
            route("plain", "no://op", "Path=/plain/**"),
            route("upstream", upstream.url, "Path=/**"),
        )
    )
    teapot = await get(session, f"{gw.url}/teapot")
    assert (teapot.status, teapot.body) == (418, b"")
    moved = await get(session, f"{gw.url}/moved")
    assert (moved.status, moved.headers["Location"]) == (302, "/elsewhere")
    header = await get(session, f"{gw.url}/header")
    assert (header.status, header.headers["X-A"], header.body) == (200, "b", b"")
    assert (await get(session, f"{gw.url}/other")).upstream == "a"


async def test_no_op_route_nothing_answers_is_an_empty_200(
    make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes(route("plain", "no://op", "Path=/plain/**")))
    assert_not_routed(await get(session, f"{gw.url}/plain/x?q=1"))
    # The body is not read, and the connection still serves the next request.
    assert_not_routed(await call(session, "POST", f"{gw.url}/plain/post", data=b"hello"))
    head = await call(session, "HEAD", f"{gw.url}/plain/head")
    assert head.status == 200


# -- SetRequestUri -----------------------------------------------------------------------------


@pytest.fixture
async def set_uri_gateway(
    upstream: Upstream, upstream_b: Upstream, make_gateway: MakeGateway
) -> RunningGateway:
    up = upstream.url
    return await make_gateway(
        routes(
            route("nopath", "no://op", "Path=/nopath/**", f"SetRequestUri={up}"),
            route("path", "no://op", "Path=/path/**", f"SetRequestUri={up}/fixed/p?x=1"),
            route("var", "no://op", "Path=/var/{seg}/**", f"SetRequestUri={up}/t/{{seg}}"),
            route(
                "hostvar",
                "no://op",
                "Path=/hostvar/{h}/**",
                f"SetRequestUri=http://{{h}}:{upstream.port}",
            ),
            route(
                "setpath", "no://op", "Path=/setpath/**", "SetPath=/changed", f"SetRequestUri={up}"
            ),
            route(
                "preserve", "no://op", "Path=/preserve", "PreserveHostHeader", f"SetRequestUri={up}"
            ),
            route("status", "no://op", "Path=/status", "SetStatus=418", f"SetRequestUri={up}"),
            route(
                "twice",
                "no://op",
                "Path=/twice",
                "SetRequestUri=http://127.0.0.1:1",
                f"SetRequestUri={up}/second",
            ),
            route("onhttp", upstream_b.url, "Path=/onhttp/**", f"SetRequestUri={up}"),
            route("ws", "no://op", "Path=/ws", f"SetRequestUri=ws://127.0.0.1:{upstream.port}/ws"),
            route("frag", "no://op", "Path=/frag", f"SetRequestUri={up}/f#frag"),
            route("badvar", upstream_b.url, "Path=/badvar/{seg}", f"SetRequestUri={up}/t/{{seg}}"),
        )
    )


async def test_set_request_uri_replaces_path_and_query(
    upstream: Upstream, set_uri_gateway: RunningGateway, session: aiohttp.ClientSession
) -> None:
    # SCG's documentation says the request path is appended; SCG 5.0.4 sends the template's
    # URL as it is: no path means "/", and the request's query is dropped.
    url = set_uri_gateway.url
    answer = await get(session, f"{url}/nopath/a/b?q=1")
    assert (answer.upstream, sent(answer)) == ("a", "/")
    assert answer.request_headers.getall("Host") == [f"127.0.0.1:{upstream.port}"]
    fixed = await get(session, f"{url}/path/a?q=1")
    assert sent(fixed) == "/fixed/p?x=1"
    assert sent(await get(session, f"{url}/frag")) == "/f"


async def test_set_request_uri_template_variables(
    upstream: Upstream, set_uri_gateway: RunningGateway, session: aiohttp.ClientSession
) -> None:
    url = set_uri_gateway.url
    assert sent(await get(session, f"{url}/var/seg1/rest?q=1")) == "/t/seg1"
    # Variables are inserted decoded, as Spring's expansion does: %3F starts a query.
    assert sent(await get(session, f"{url}/var/a%3Fb/rest")) == "/t/a?b"
    # ... and a decoded space makes a URL java.net.URI refuses: SCG changes nothing, so the
    # no://op route sends nowhere, and the http route goes to its own uri.
    assert_not_routed(await get(session, f"{url}/var/a%20b/rest"))
    kept = await get(session, f"{url}/badvar/a%20b")
    assert (kept.upstream, sent(kept)) == ("b", "/badvar/a%20b")
    by_host = await get(session, f"{url}/hostvar/localhost/x")
    assert by_host.upstream == "a"
    assert by_host.request_headers["Host"] == f"localhost:{upstream.port}"


async def test_set_request_uri_runs_after_every_route_filter(
    set_uri_gateway: RunningGateway, session: aiohttp.ClientSession
) -> None:
    url = set_uri_gateway.url
    # SetPath changed the request's path, which the new URL then replaced.
    assert sent(await get(session, f"{url}/setpath/x")) == "/"
    kept = await get(session, f"{url}/preserve", headers={"Host": "client.example"})
    assert kept.request_headers.getall("Host") == ["client.example"]
    teapot = await get(session, f"{url}/status")
    assert (teapot.status, teapot.upstream) == (418, "a")
    # Two of them: the last URL wins (the first would fail to connect).
    assert sent(await get(session, f"{url}/twice")) == "/second"
    # On a route with an http uri, the new URL wins over the route's.
    assert (await get(session, f"{url}/onhttp/x")).upstream == "a"


async def test_set_request_uri_to_ws_needs_an_upgrade(
    set_uri_gateway: RunningGateway, session: aiohttp.ClientSession
) -> None:
    plain = await get(session, f"{set_uri_gateway.url}/ws")
    assert plain.status == 400  # SCG: 400 from its WebSocket handshake
    assert "WebSocket" in plain.json()["message"]
    async with session.ws_connect(f"{set_uri_gateway.url}/ws") as ws:
        await ws.send_str("hi")
        assert (await ws.receive_str()) == "a: hi"


async def test_set_request_uri_lb_balances_and_keeps_the_request_path(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # SCG's load-balancer filter rebuilds the URL from the request's own path and query (after
    # the route's filters, PrefixPath here), with the chosen instance's host and port.
    gw = await make_gateway(
        f"""
        services:
          orders:
            - {{host: 127.0.0.1, port: {upstream.port}}}
          users:
            - {{host: 127.0.0.1, port: {upstream_b.port}}}
        routes:
          - id: by_host
            uri: no://op
            predicates:
              - Host={{svc}}.svc.test
            filters:
              - PrefixPath=/httpbin
              - SetRequestUri=lb://{{svc}}
          - id: fixed
            uri: no://op
            predicates:
              - Path=/fixed/**
            filters:
              - SetRequestUri=lb://Orders/ignored?x=1
        """
    )
    users = await get(session, f"{gw.url}/a?q=1", headers={"Host": "users.svc.test"})
    assert (users.upstream, sent(users)) == ("b", "/httpbin/a?q=1")
    orders = await get(session, f"{gw.url}/a", headers={"Host": "ORDERS.svc.test"})
    assert orders.upstream == "a"
    fixed = await get(session, f"{gw.url}/fixed/y?q=2")
    assert (fixed.upstream, sent(fixed)) == ("a", "/fixed/y?q=2")
    with caplog.at_level(logging.WARNING, "meshgate.dispatch"):
        unknown = await get(session, f"{gw.url}/a", headers={"Host": "nobody.svc.test"})
    assert (unknown.status, unknown.json()["status"]) == (503, 503)
    assert "Unable to find instance for nobody" in caplog.text


# -- RequestHeaderToRequestUri -----------------------------------------------------------------


@pytest.fixture
async def header_gateway(
    upstream: Upstream, upstream_b: Upstream, make_gateway: MakeGateway
) -> RunningGateway:
    return await make_gateway(
        routes(
            route("rh", "no://op", "Path=/rh/**", "RequestHeaderToRequestUri=X-Target"),
            route(
                "rhhttp",
                f"{upstream_b.url}/base",
                "Path=/rhhttp/**",
                "RequestHeaderToRequestUri=X-Target",
            ),
            route(
                "removed",
                "no://op",
                "Path=/removed/**",
                "RequestHeaderToRequestUri=X-Target",
                "RemoveRequestHeader=X-Target",
            ),
            route(
                "added",
                "no://op",
                "Path=/added/**",
                "RequestHeaderToRequestUri=X-Target",
                f"AddRequestHeader=X-Target, {upstream.url}/added",
            ),
        )
    )


async def test_header_names_the_url(
    upstream: Upstream, header_gateway: RunningGateway, session: aiohttp.ClientSession
) -> None:
    url, up = header_gateway.url, upstream.url
    answer = await get(session, f"{url}/rh/a?q=1", headers={"X-Target": f"{up}/h/x?z=1"})
    assert (answer.upstream, sent(answer)) == ("a", "/h/x?z=1")
    assert answer.request_headers["Host"] == f"127.0.0.1:{upstream.port}"
    assert answer.request_headers["X-Target"] == f"{up}/h/x?z=1"  # passed on as it is
    bare = await get(session, f"{url}/rh/a?q=1", headers={"X-Target": up})
    assert sent(bare) == "/"
    upper = f"HTTP://127.0.0.1:{upstream.port}/enc%20x"
    assert sent(await get(session, f"{url}/rh/a", headers={"X-Target": upper})) == "/enc%20x"
    first = [("X-Target", f"{up}/first"), ("X-Target", "http://127.0.0.1:1/second")]
    assert sent(await get(session, f"{url}/rh/a", headers=first)) == "/first"


@pytest.mark.parametrize(
    "value", ["not a uri", "relative/x", "lb://svc", "ws://127.0.0.1:1/ws", "forward:/rh/x", ""]
)
async def test_header_scg_ignores(
    value: str, header_gateway: RunningGateway, session: aiohttp.ClientSession
) -> None:
    # java.net.URI or URL refuses these: the request goes where the route sends it.
    headers = {"X-Target": value}
    assert_not_routed(await get(session, f"{header_gateway.url}/rh/a", headers=headers))
    kept = await get(session, f"{header_gateway.url}/rhhttp/a?q=1", headers=headers)
    assert (kept.upstream, sent(kept)) == ("b", "/rhhttp/a?q=1")


async def test_header_absent(
    header_gateway: RunningGateway, session: aiohttp.ClientSession
) -> None:
    assert_not_routed(await get(session, f"{header_gateway.url}/rh/a"))
    assert (await get(session, f"{header_gateway.url}/rhhttp/a")).upstream == "b"


async def test_header_url_nothing_sends(
    header_gateway: RunningGateway, session: aiohttp.ClientSession
) -> None:
    # Java has a URL handler for ftp and mailto, so SCG takes them as the request URL, and then
    # no routing filter sends it: the empty 200, even on a route with an http uri.
    for value in ("ftp://127.0.0.1:1/x", "mailto:a@b"):
        headers = {"X-Target": value}
        assert_not_routed(await get(session, f"{header_gateway.url}/rhhttp/a", headers=headers))


@pytest.mark.parametrize("value", ["http:opaque", "http:///nohost"])
async def test_header_http_url_without_a_host_is_a_500(
    value: str,
    header_gateway: RunningGateway,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "meshgate.dispatch"):
        answer = await get(session, f"{header_gateway.url}/rh/a", headers={"X-Target": value})
    assert (answer.status, answer.json()["status"]) == (500, 500)  # as SCG 5.0.4, in JSON
    assert f"cannot send the request to {value!r}: no host" in caplog.text


async def test_header_with_user_info_cannot_be_sent(
    upstream: Upstream,
    header_gateway: RunningGateway,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # SCG's client takes "u:p@host" for the host name and answers 500 for the failed
    # resolution; meshgate answers connect failures with 502 (a deliberate difference).
    value = f"http://u:p@127.0.0.1:{upstream.port}/x"
    with caplog.at_level(logging.WARNING, "meshgate.dispatch"):
        answer = await get(session, f"{header_gateway.url}/rh/a", headers={"X-Target": value})
    assert (answer.status, answer.json()["status"]) == (502, 502)
    assert "user info" in caplog.text


async def test_header_read_after_the_route_filters(
    upstream: Upstream, header_gateway: RunningGateway, session: aiohttp.ClientSession
) -> None:
    url = header_gateway.url
    removed = await get(session, f"{url}/removed/a", headers={"X-Target": f"{upstream.url}/h"})
    assert_not_routed(removed)
    added = await get(session, f"{url}/added/a")
    assert (added.upstream, sent(added)) == ("a", "/added")
