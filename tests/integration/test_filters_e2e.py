"""Every GatewayFilter through the running gateway, against real upstreams on 127.0.0.1.

Route definitions follow the examples of Spring Cloud Gateway's reference documentation, with
``uri`` pointed at a test upstream: the echo upstream reports what it received, and a small
aiohttp app in this module answers with the response headers some filters work on (Location, a
header with a password in it, a CORS header).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import MakeGateway
from tests.support.echoed import call, get
from tests.support.upstream import Upstream

BACKEND_LOCATION = "http://object-service.prod.example.net/v2/some/object/id"
PASSWORD_HEADER = "/42?user=ford&password=omg!what&flag=true"


async def _created(request: web.Request) -> web.Response:
    return web.Response(status=201, headers={"Location": BACKEND_LOCATION})


async def _password(request: web.Request) -> web.Response:
    return web.Response(text="ok", headers={"X-Response-Red": PASSWORD_HEADER})


async def _cors(request: web.Request) -> web.Response:
    return web.Response(
        text="ok",
        headers={
            "Access-Control-Allow-Origin": "https://app.example",
            "Access-Control-Allow-Credentials": "true",
        },
    )


@pytest.fixture
async def headers_upstream() -> AsyncIterator[str]:
    """A real upstream whose responses carry the headers the response filters rewrite."""
    app = web.Application()
    app.router.add_post("/some/object/name", _created)
    app.router.add_post("/v2/some/object/name", _created)
    app.router.add_get("/password", _password)
    app.router.add_get("/cors", _cors)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port: int = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def one_route(uri: str, *filters: str, path: str = "/**", route_id: str = "r") -> str:
    lines = "\n".join(f"      - {f}" for f in filters)
    return f"""
routes:
  - id: {route_id}
    uri: {uri}
    predicates:
      - Path={path}
    filters:
{lines}
"""


# -- request headers ---------------------------------------------------------------------------


async def test_add_request_header(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: add_request_header_route
            uri: {upstream.url}
            predicates:
              - Path=/red/{{segment}}
            filters:
              - AddRequestHeader=X-Request-red, blue
              - AddRequestHeader=X-Request-Red, Blue-{{segment}}
        """
    )
    answer = await get(session, f"{gw.url}/red/7", headers={"X-Request-Red": "mine"})
    assert answer.request_headers.getall("X-Request-Red") == ["mine", "blue", "Blue-7"]


async def test_add_request_headers_if_not_present(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        one_route(
            upstream.url,
            "AddRequestHeadersIfNotPresent=X-Request-Color-1:blue,X-Request-Color-2:green",
        )
    )
    added = (await get(session, f"{gw.url}/x")).request_headers
    assert (added.getall("X-Request-Color-1"), added.getall("X-Request-Color-2")) == (
        ["blue"],
        ["green"],
    )
    kept = (await get(session, f"{gw.url}/x", headers={"X-Request-Color-1": "red"})).request_headers
    assert (kept.getall("X-Request-Color-1"), kept.getall("X-Request-Color-2")) == (
        ["red"],
        ["green"],
    )


async def test_map_request_header(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(one_route(upstream.url, "MapRequestHeader=Blue, X-Request-Red"))
    mapped = (await get(session, f"{gw.url}/x", headers={"Blue": "sky"})).request_headers
    assert (mapped["Blue"], mapped.getall("X-Request-Red")) == ("sky", ["sky"])
    assert "X-Request-Red" not in (await get(session, f"{gw.url}/x")).request_headers


async def test_remove_request_header(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(one_route(upstream.url, "RemoveRequestHeader=X-Request-Foo"))
    sent = {"X-Request-Foo": "1", "X-Request-Bar": "2"}
    seen = (await get(session, f"{gw.url}/x", headers=sent)).request_headers
    assert "X-Request-Foo" not in seen
    assert seen["X-Request-Bar"] == "2"


async def test_set_request_header(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: setrequestheader_route
            uri: {upstream.url}
            predicates:
              - Host={{segment}}.myhost.org
            filters:
              - SetRequestHeader=X-Request-Red, Blue
              - SetRequestHeader=X-Request-Sub, Blue-{{segment}}
        """
    )
    seen = (
        await get(
            session,
            f"{gw.url}/x",
            headers={"Host": "www.myhost.org", "X-Request-Red": "1234"},
        )
    ).request_headers
    assert seen.getall("X-Request-Red") == ["Blue"]
    assert seen["X-Request-Sub"] == "Blue-www"


async def test_preserve_host_header(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: preserve_host_route
            uri: {upstream.url}
            predicates:
              - Path=/keep/**
            filters:
              - PreserveHostHeader
          - id: plain
            uri: {upstream.url}
        """
    )
    kept = await get(session, f"{gw.url}/keep/x", headers={"Host": "example.test"})
    assert kept.request_headers.getall("Host") == ["example.test"]
    replaced = await get(session, f"{gw.url}/x", headers={"Host": "example.test"})
    assert replaced.request_headers.getall("Host") == [f"127.0.0.1:{upstream.port}"]


async def test_set_request_host_header(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: set_request_host_header_route
            uri: {upstream.url}
            predicates:
              - Path=/headers
            filters:
              - name: SetRequestHostHeader
                args:
                  host: example.org
        """
    )
    answer = await get(session, f"{gw.url}/headers", headers={"Host": "client.test"})
    assert answer.request_headers.getall("Host") == ["example.org"]
    assert answer.request_headers["X-Forwarded-Host"] == "client.test"


async def test_request_header_size_refuses_a_big_header_with_431(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(one_route(upstream.url, "RequestHeaderSize=1000B"))
    assert (await get(session, f"{gw.url}/x", headers={"X-Big": "v" * 900})).status == 200
    refused = await get(session, f"{gw.url}/x", headers={"X-Big": "v" * 1000})
    assert refused.status == 431
    assert refused.report == {}  # answered by the gateway, never forwarded
    assert refused.headers["Content-Type"] == "application/json"
    body = refused.json()
    assert (body["status"], body["error"], body["path"]) == (
        431,
        "Request Header Fields Too Large",
        "/x",
    )
    assert "'X-Big' is 1005B" in body["message"]
    assert refused.headers["errorMessage"] == body["message"]


async def test_request_size_refuses_a_big_body_with_413(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: request_size_route
            uri: {upstream.url}/upload
            predicates:
              - Path=/upload
            filters:
              - name: RequestSize
                args:
                  maxSize: 5000000
        """
    )
    accepted = await call(session, "POST", f"{gw.url}/upload", data=b"x" * 5_000_000)
    assert (accepted.status, accepted.report["body_length"]) == (200, 5_000_000)
    assert accepted.path == "/upload"  # as in SCG, the path of an http uri is not used
    refused = await call(session, "POST", f"{gw.url}/upload", data=b"x" * 6_000_000)
    assert refused.status == 413
    body = refused.json()
    expected = (
        "Request size is larger than permissible limit. Request size is 6.0 MB where "
        "permissible limit is 5.0 MB"
    )
    assert (body["status"], body["message"]) == (413, expected)
    assert refused.headers["errorMessage"] == expected


# -- query -------------------------------------------------------------------------------------


async def test_add_request_parameter(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: add_request_parameter_route
            uri: {upstream.url}
            predicates:
              - Host={{segment}}.myhost.org
            filters:
              - AddRequestParameter=red, blue
              - AddRequestParameter=foo, bar-{{segment}}
        """
    )
    headers = {"Host": "www.myhost.org"}
    assert (await get(session, f"{gw.url}/x", headers=headers)).query == "red=blue&foo=bar-www"
    with_query = await get(session, f"{gw.url}/x?a=1&b=%20", headers=headers)
    assert with_query.report["raw_path"] == "/x?a=1&b=%20&red=blue&foo=bar-www"


async def test_remove_request_parameter(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(one_route(upstream.url, "RemoveRequestParameter=red"))
    answer = await get(session, f"{gw.url}/x?red=1&blue=2&red=3&redder=4")
    assert answer.query == "blue=2&redder=4"
    assert (await get(session, f"{gw.url}/x?blue=2")).query == "blue=2"


# -- response headers --------------------------------------------------------------------------


async def test_add_response_header(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        one_route(
            upstream.url,
            "AddResponseHeader=X-Response-Red, Blue",
            "AddResponseHeader=X-Upstream, not-added, false",
            "AddResponseHeader=X-Absent, added, false",
        )
    )
    answer = await get(session, f"{gw.url}/x")
    assert answer.headers.getall("X-Response-Red") == ["Blue"]
    # override=false leaves a header the upstream already set alone.
    assert answer.headers.getall("X-Upstream") == ["a"]
    assert answer.headers.getall("X-Absent") == ["added"]


async def test_dedupe_response_header(
    headers_upstream: str, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    # Post filters run in reverse order, so the AddResponseHeaders listed after the dedupe
    # have added their values to the upstream's own by the time it runs.
    adds = (
        "AddResponseHeader=Access-Control-Allow-Origin, https://gw.example",
        "AddResponseHeader=Access-Control-Allow-Origin, https://app.example",
        "AddResponseHeader=Access-Control-Allow-Credentials, true",
    )
    dedupe = "DedupeResponseHeader=Access-Control-Allow-Credentials Access-Control-Allow-Origin"
    gw = await make_gateway(
        f"""
        routes:
          - id: no_dedupe
            uri: {headers_upstream}
            predicates:
              - Query=mode, none
            filters:
              - {adds[0]}
              - {adds[1]}
              - {adds[2]}
          - id: dedupe_response_header_route
            uri: {headers_upstream}
            predicates:
              - Query=mode, first
            filters:
              - {dedupe}
              - {adds[0]}
              - {adds[1]}
              - {adds[2]}
          - id: dedupe_last
            uri: {headers_upstream}
            predicates:
              - Query=mode, last
            filters:
              - {dedupe}, RETAIN_LAST
              - {adds[0]}
              - {adds[1]}
              - {adds[2]}
          - id: dedupe_unique
            uri: {headers_upstream}
            predicates:
              - Query=mode, unique
            filters:
              - {dedupe}, RETAIN_UNIQUE
              - {adds[0]}
              - {adds[1]}
              - {adds[2]}
        """
    )

    async def cors(mode: str) -> tuple[list[str], list[str]]:
        answer = await get(session, f"{gw.url}/cors?mode={mode}")
        assert answer.status == 200
        return (
            answer.headers.getall("Access-Control-Allow-Origin"),
            answer.headers.getall("Access-Control-Allow-Credentials"),
        )

    # The upstream's value, then the last-listed filter's, then the first-listed one's.
    origins = ["https://app.example", "https://app.example", "https://gw.example"]
    assert await cors("none") == (origins, ["true", "true"])
    assert await cors("first") == (["https://app.example"], ["true"])
    assert await cors("last") == (["https://gw.example"], ["true"])
    assert await cors("unique") == (["https://app.example", "https://gw.example"], ["true"])


async def test_remove_response_header(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: removeresponseheader_route
            uri: {upstream.url}
            predicates:
              - Path=/gone/**
            filters:
              - RemoveResponseHeader=X-Upstream
          - id: plain
            uri: {upstream.url}
        """
    )
    assert "X-Upstream" not in (await get(session, f"{gw.url}/gone/x")).headers
    assert (await get(session, f"{gw.url}/x")).headers["X-Upstream"] == "a"


async def test_set_response_header(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: setresponseheader_route
            uri: {upstream.url}
            predicates:
              - Host={{segment}}.myhost.org
            filters:
              - SetResponseHeader=X-Upstream, Blue
              - SetResponseHeader=foo, bar-{{segment}}
        """
    )
    answer = await get(session, f"{gw.url}/x", headers={"Host": "www.myhost.org"})
    assert answer.headers.getall("X-Upstream") == ["Blue"]
    assert answer.headers.getall("foo") == ["bar-www"]


async def test_rewrite_response_header(
    headers_upstream: str, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        one_route(
            headers_upstream,
            "RewriteResponseHeader=X-Response-Red, password=[^&]+, password=***",
        )
    )
    answer = await get(session, f"{gw.url}/password")
    assert answer.headers.getall("X-Response-Red") == ["/42?user=ford&password=***&flag=true"]


async def test_rewrite_location_response_header(
    headers_upstream: str, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: rewritelocationresponseheader_route
            uri: {headers_upstream}
            filters:
              - RewriteLocationResponseHeader=AS_IN_REQUEST, Location, ,
        """
    )
    host = {"Host": "api.example.com"}
    unversioned = await call(session, "POST", f"{gw.url}/some/object/name", headers=host)
    assert unversioned.status == 201
    assert unversioned.headers["Location"] == "http://api.example.com/some/object/id"
    # AS_IN_REQUEST keeps the version when the request path had one.
    versioned = await call(session, "POST", f"{gw.url}/v2/some/object/name", headers=host)
    assert versioned.headers["Location"] == "http://api.example.com/v2/some/object/id"


async def test_secure_headers(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: secure
            uri: {upstream.url}
            predicates:
              - Path=/secure/**
            filters:
              - SecureHeaders
          - id: secure_tuned
            uri: {upstream.url}
            predicates:
              - Path=/tuned/**
            filters:
              - name: SecureHeaders
                args:
                  disable: x-frame-options
                  referrer-policy: same-origin
          - id: plain
            uri: {upstream.url}
        """
    )
    secure = (await get(session, f"{gw.url}/secure/x")).headers
    assert secure["X-Xss-Protection"] == "1 ; mode=block"
    assert secure["Strict-Transport-Security"] == "max-age=631138519"
    assert secure["X-Frame-Options"] == "DENY"
    assert secure["X-Content-Type-Options"] == "nosniff"
    assert secure["Referrer-Policy"] == "no-referrer"
    assert secure["X-Download-Options"] == "noopen"
    assert secure["X-Permitted-Cross-Domain-Policies"] == "none"
    assert secure["Content-Security-Policy"].startswith("default-src 'self' https:;")
    assert "Permissions-Policy" not in secure  # opt-in only
    tuned = (await get(session, f"{gw.url}/tuned/x")).headers
    assert "X-Frame-Options" not in tuned
    assert tuned["Referrer-Policy"] == "same-origin"
    plain = (await get(session, f"{gw.url}/x")).headers
    assert "X-Frame-Options" not in plain
    assert "Strict-Transport-Security" not in plain


# -- path --------------------------------------------------------------------------------------


async def test_prefix_path(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(one_route(upstream.url, "PrefixPath=/mypath"))
    answer = await get(session, f"{gw.url}/hello?x=1")
    assert (answer.path, answer.query) == ("/mypath/hello", "x=1")


async def test_rewrite_path(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: rewritepath_route
            uri: {upstream.url}
            predicates:
              - Path=/red/**
            filters:
              - RewritePath=/red/?(?<segment>.*), /$\\{{segment}}
        """
    )
    assert (await get(session, f"{gw.url}/red/blue")).path == "/blue"
    assert (await get(session, f"{gw.url}/red/blue/green?q=1")).report["raw_path"] == (
        "/blue/green?q=1"
    )
    assert (await get(session, f"{gw.url}/red")).path == "/"


async def test_set_path(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: setpath_route
            uri: {upstream.url}
            predicates:
              - Path=/red/{{segment}}
            filters:
              - SetPath=/{{segment}}
        """
    )
    assert (await get(session, f"{gw.url}/red/blue")).path == "/blue"
    assert (await get(session, f"{gw.url}/red/a%20b")).report["raw_path"] == "/a%20b"


async def test_strip_prefix_and_x_forwarded_prefix(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: nameRoot
            uri: {upstream.url}
            predicates:
              - Path=/name/**
            filters:
              - StripPrefix=2
        """
    )
    answer = await get(session, f"{gw.url}/name/blue/red")
    assert answer.path == "/red"
    assert answer.request_headers["X-Forwarded-Prefix"] == "/name/blue"
    short = await get(session, f"{gw.url}/name/blue")
    assert short.path == "/"
    assert short.request_headers["X-Forwarded-Prefix"] == "/name/blue"


async def test_no_x_forwarded_prefix_without_a_stripped_prefix(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(one_route(upstream.url, "AddRequestHeader=X-A, b"))
    assert "X-Forwarded-Prefix" not in (await get(session, f"{gw.url}/name/blue")).request_headers


# -- status and redirect -----------------------------------------------------------------------


async def test_set_status(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: setstatusstring_route
            uri: {upstream.url}
            predicates:
              - Path=/string/**
            filters:
              - SetStatus=UNAUTHORIZED
          - id: setstatusint_route
            uri: {upstream.url}
            predicates:
              - Path=/int/**
            filters:
              - SetStatus=401
          - id: plain
            uri: {upstream.url}
        """
    )
    by_name = await get(session, f"{gw.url}/string/x")
    assert by_name.status == 401
    assert by_name.report["path"] == "/string/x"  # the upstream's body still comes through
    assert (await get(session, f"{gw.url}/int/x")).status == 401
    assert (await get(session, f"{gw.url}/x")).status == 200


async def test_redirect_to(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: redirect_route
            uri: {upstream.url}
            predicates:
              - Path=/old/**
            filters:
              - RedirectTo=302, https://acme.org
          - id: redirect_with_params
            uri: {upstream.url}
            predicates:
              - Path=/params/**
            filters:
              - RedirectTo=302, https://acme.org/new, true
        """
    )
    moved = await get(session, f"{gw.url}/old/x?a=1")
    assert (moved.status, moved.headers["Location"]) == (302, "https://acme.org")
    assert moved.report == {}
    with_params = await get(session, f"{gw.url}/params/x?a=1&b=%20")
    assert with_params.headers["Location"] == "https://acme.org/new?a=1&b=%20"


# -- route-wide behaviour ----------------------------------------------------------------------


async def test_default_filters_apply_to_every_route(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(
        f"""
        spring:
          cloud:
            gateway:
              default-filters:
                - AddResponseHeader=X-Response-Default-Red, Default-Blue
                - PrefixPath=/httpbin
                - AddRequestHeader=X-Order, default-3
              routes:
                - id: one
                  uri: {upstream.url}
                  predicates:
                    - Path=/one/**
                - id: two
                  uri: {upstream_b.url}
                  predicates:
                    - Path=/two/**
                  filters:
                    - AddResponseHeader=X-Route, two
                    - AddRequestHeader=X-Order, two-2
        """
    )
    for path, name in (("/one/x", "a"), ("/two/x", "b")):
        answer = await get(session, f"{gw.url}{path}")
        assert (answer.upstream, answer.path) == (name, f"/httpbin{path}")
        assert answer.headers.getall("X-Response-Default-Red") == ["Default-Blue"]
    two = await get(session, f"{gw.url}/two/x")
    assert two.headers["X-Route"] == "two"
    assert "X-Route" not in (await get(session, f"{gw.url}/one/x")).headers
    # SCG orders each list by position and stable-sorts the two together, defaults first:
    # default 1, route 1, default 2, route 2, default 3.
    assert two.request_headers.getall("X-Order") == ["two-2", "default-3"]


async def test_forward_route_dispatches_to_another_route(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: legacy
            uri: forward:/v2/orders
            predicates:
              - Path=/legacy/orders
            filters:
              - AddRequestHeader=X-Forwarded-By, legacy
          - id: nowhere
            uri: forward:/unrouted
            predicates:
              - Path=/nowhere
          - id: orders
            uri: {upstream_b.url}
            predicates:
              - Path=/v2/**
            filters:
              - AddResponseHeader=X-Served-By, orders
        """
    )
    answer = await get(session, f"{gw.url}/legacy/orders?id=3")
    assert (answer.status, answer.upstream, answer.path) == (200, "b", "/v2/orders")
    assert answer.query == "id=3"
    assert answer.request_headers["X-Forwarded-By"] == "legacy"
    assert answer.headers["X-Served-By"] == "orders"
    assert (await get(session, f"{gw.url}/nowhere")).status == 404


async def test_discovery_locator_routes_by_service_name(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(
        f"""
        services:
          echo:
            - {{host: 127.0.0.1, port: {upstream.port}}}
          other:
            - {{host: 127.0.0.1, port: {upstream_b.port}}}
        routes: []
        """,
        discovery_locator_enabled=True,
    )
    echo = await get(session, f"{gw.url}/echo/x?q=1")
    assert (echo.status, echo.upstream, echo.path, echo.query) == (200, "a", "/x", "q=1")
    other = await get(session, f"{gw.url}/other/deep/path")
    assert (other.upstream, other.path) == ("b", "/deep/path")
    assert (await get(session, f"{gw.url}/missing/x")).status == 404


async def test_discovery_locator_is_off_by_default(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        services:
          echo:
            - {{host: 127.0.0.1, port: {upstream.port}}}
        routes: []
        """
    )
    assert (await get(session, f"{gw.url}/echo/x")).status == 404


async def test_lb_uri_to_a_static_service(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        services:
          orders:
            - {{host: 127.0.0.1, port: {upstream.port}}}
        routes:
          - id: orders
            uri: lb://orders
            predicates:
              - Path=/api/orders/**
            filters:
              - StripPrefix=1
        """
    )
    answer = await get(session, f"{gw.url}/api/orders/9")
    assert (answer.status, answer.upstream, answer.path) == (200, "a", "/orders/9")
    assert answer.request_headers["Host"] == f"127.0.0.1:{upstream.port}"
    assert (await get(session, f"{gw.url}/api/other")).status == 404
