"""Every route predicate through the running gateway, against real upstreams on 127.0.0.1.

The route definitions are the examples of Spring Cloud Gateway's reference documentation, with
``uri`` pointed at the test upstream. Each test sends a request the predicate must accept and one
it must refuse (404: no route), so a predicate that matched everything would fail it.
"""

from __future__ import annotations

import aiohttp

from tests.conftest import MakeGateway
from tests.support.echoed import call, get
from tests.support.upstream import Upstream

# SCG's example instant, and instants far enough either side that the clock never matters.
DOC_INSTANT = "2017-01-20T17:42:47.789-07:00[America/Denver]"
DOC_INSTANT_NEXT_DAY = "2017-01-21T17:42:47.789-07:00[America/Denver]"
FAR_FUTURE = "2999-01-20T17:42:47.789-07:00[America/Denver]"


async def test_after_matches_once_the_instant_has_passed(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: after_route
            uri: {upstream.url}
            predicates:
              - Path=/past/**
              - After={DOC_INSTANT}
          - id: after_future_route
            uri: {upstream.url}
            predicates:
              - Path=/future/**
              - After={FAR_FUTURE}
        """
    )
    assert (await get(session, f"{gw.url}/past/x")).status == 200
    assert (await get(session, f"{gw.url}/future/x")).status == 404


async def test_before_matches_only_until_the_instant(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: before_route
            uri: {upstream.url}
            predicates:
              - Path=/past/**
              - Before={DOC_INSTANT}
          - id: before_future_route
            uri: {upstream.url}
            predicates:
              - Path=/future/**
              - Before={FAR_FUTURE}
        """
    )
    assert (await get(session, f"{gw.url}/past/x")).status == 404
    assert (await get(session, f"{gw.url}/future/x")).status == 200


async def test_between_matches_inside_the_window_only(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: between_route
            uri: {upstream.url}
            predicates:
              - Path=/closed/**
              - Between={DOC_INSTANT}, {DOC_INSTANT_NEXT_DAY}
          - id: between_open_route
            uri: {upstream.url}
            predicates:
              - Path=/open/**
              - Between={DOC_INSTANT}, {FAR_FUTURE}
          - id: between_offset_only
            uri: {upstream.url}
            predicates:
              - Path=/utc/**
              - Between=2017-01-20T00:00:00Z, 2999-01-01T00:00:00+01:00
        """
    )
    assert (await get(session, f"{gw.url}/closed/x")).status == 404
    assert (await get(session, f"{gw.url}/open/x")).status == 200
    assert (await get(session, f"{gw.url}/utc/x")).status == 200


async def test_cookie_value_must_match_the_regexp(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: cookie_route
            uri: {upstream.url}
            predicates:
              - Cookie=chocolate, ch.p
        """
    )
    ok = await get(session, f"{gw.url}/c", headers={"Cookie": "vanilla=x; chocolate=chip"})
    assert ok.status == 200
    assert ok.request_headers["Cookie"] == "vanilla=x; chocolate=chip"
    assert (await get(session, f"{gw.url}/c", headers={"Cookie": "chocolate=chips"})).status == 404
    assert (await get(session, f"{gw.url}/c", headers={"Cookie": "vanilla=chip"})).status == 404
    assert (await get(session, f"{gw.url}/c")).status == 404


async def test_header_value_must_match_the_regexp(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: header_route
            uri: {upstream.url}
            predicates:
              - Header=X-Request-Id, \\d+
          - id: header_present_route
            uri: {upstream.url}
            predicates:
              - Header=X-Present
        """
    )
    assert (await get(session, f"{gw.url}/h", headers={"X-Request-Id": "123"})).status == 200
    assert (await get(session, f"{gw.url}/h", headers={"X-Request-Id": "12a"})).status == 404
    assert (await get(session, f"{gw.url}/h")).status == 404
    # Without a regexp the header only has to be there, whatever its value.
    assert (await get(session, f"{gw.url}/h", headers={"X-Present": ""})).status == 200


async def test_host_patterns_and_captured_variable(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: host_route
            uri: {upstream.url}
            predicates:
              - Host=**.somehost.org,**.anotherhost.org
          - id: host_sub_route
            uri: {upstream_b.url}
            predicates:
              - Host={{sub}}.myhost.org
            filters:
              - AddRequestHeader=X-Sub, {{sub}}
        """
    )
    for host in ("www.somehost.org", "beta.somehost.org", "www.anotherhost.org"):
        answer = await get(session, f"{gw.url}/h", headers={"Host": host})
        assert (answer.status, answer.upstream) == (200, "a"), host
    sub = await get(session, f"{gw.url}/h", headers={"Host": "beta.myhost.org"})
    assert (sub.status, sub.upstream) == (200, "b")
    assert sub.request_headers["X-Sub"] == "beta"
    for host in ("somehost.org.evil", "www.otherhost.org", "a.b.myhost.org"):
        assert (await get(session, f"{gw.url}/h", headers={"Host": host})).status == 404, host


async def test_method_is_one_of_the_list(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: method_route
            uri: {upstream.url}
            predicates:
              - Method=GET,POST
        """
    )
    got = await call(session, "GET", f"{gw.url}/m")
    posted = await call(session, "POST", f"{gw.url}/m", data=b"x")
    assert (got.status, got.report["method"]) == (200, "GET")
    assert (posted.status, posted.report["method"]) == (200, "POST")
    assert (await call(session, "PUT", f"{gw.url}/m", data=b"x")).status == 404
    assert (await call(session, "DELETE", f"{gw.url}/m")).status == 404


async def test_path_segment_variables(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: path_route
            uri: {upstream.url}
            predicates:
              - Path=/red/{{segment}},/blue/{{segment}}
            filters:
              - AddRequestHeader=X-Segment, {{segment}}
        """
    )
    red = await get(session, f"{gw.url}/red/1")
    blue = await get(session, f"{gw.url}/blue/bar")
    assert (red.status, red.path, red.request_headers["X-Segment"]) == (200, "/red/1", "1")
    assert (blue.status, blue.request_headers["X-Segment"]) == (200, "bar")
    assert (await get(session, f"{gw.url}/red/1/2")).status == 404
    assert (await get(session, f"{gw.url}/red")).status == 404
    assert (await get(session, f"{gw.url}/green/1")).status == 404


async def test_path_double_star_and_capture_the_rest(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: ant
            uri: {upstream.url}
            predicates:
              - Path=/ant/**
          - id: rest
            uri: {upstream_b.url}
            predicates:
              - Path=/files/{{*rest}}
            filters:
              - AddRequestHeader=X-Rest, {{rest}}
        """
    )
    for path in ("/ant", "/ant/", "/ant/a", "/ant/a/b/c"):
        answer = await get(session, f"{gw.url}{path}")
        assert (answer.status, answer.upstream, answer.path) == (200, "a", path)
    assert (await get(session, f"{gw.url}/antelope")).status == 404
    deep = await get(session, f"{gw.url}/files/a/b.txt")
    assert (deep.status, deep.upstream) == (200, "b")
    assert deep.request_headers["X-Rest"] == "/a/b.txt"
    assert (await get(session, f"{gw.url}/filesystem")).status == 404


async def test_path_trailing_slash_on_and_off(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: lenient
            uri: {upstream.url}
            predicates:
              - Path=/red/{{segment}}
          - id: strict
            uri: {upstream_b.url}
            predicates:
              - Path=/blue/{{segment}},false
        """
    )
    assert (await get(session, f"{gw.url}/red/1")).status == 200
    assert (await get(session, f"{gw.url}/red/1/")).status == 200
    assert (await get(session, f"{gw.url}/blue/1")).status == 200
    assert (await get(session, f"{gw.url}/blue/1/")).status == 404


async def test_query_parameter_present_or_matching(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: query_route
            uri: {upstream.url}
            predicates:
              - Query=green
          - id: query_regexp_route
            uri: {upstream_b.url}
            predicates:
              - Query=red, gree.
        """
    )
    present = await get(session, f"{gw.url}/q?green")
    assert (present.status, present.upstream, present.query) == (200, "a", "green")
    assert (await get(session, f"{gw.url}/q?green=anything")).upstream == "a"
    matching = await get(session, f"{gw.url}/q?red=greet")
    assert (matching.status, matching.upstream) == (200, "b")
    assert (await get(session, f"{gw.url}/q?red=blue")).status == 404
    assert (await get(session, f"{gw.url}/q?red=greetings")).status == 404
    assert (await get(session, f"{gw.url}/q?blue=green")).status == 404
    assert (await get(session, f"{gw.url}/q")).status == 404


async def test_remote_addr_cidr(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: remoteaddr_local
            uri: {upstream.url}
            predicates:
              - Path=/local/**
              - RemoteAddr=127.0.0.1/8
          - id: remoteaddr_route
            uri: {upstream.url}
            predicates:
              - Path=/lan/**
              - RemoteAddr=192.168.1.1/24
        """
    )
    assert (await get(session, f"{gw.url}/local/x")).status == 200
    assert (await get(session, f"{gw.url}/lan/x")).status == 404


async def test_weight_splits_traffic_between_the_group(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: weight_high
            uri: {upstream.url}
            predicates:
              - Path=/w/**
              - Weight=group1, 8
          - id: weight_low
            uri: {upstream_b.url}
            predicates:
              - Path=/w/**
              - Weight=group1, 2
        """
    )
    seen = {"a": 0, "b": 0}
    for _ in range(200):
        answer = await get(session, f"{gw.url}/w/x")
        assert answer.status == 200
        assert answer.upstream is not None
        seen[answer.upstream] += 1
    # 80/20 over 200 requests: expect about 160/40. The bounds only fail far out in the tails.
    assert seen["a"] > seen["b"] >= 20, seen
    assert (await get(session, f"{gw.url}/other")).status == 404


async def test_route_order_beats_file_order(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: first_in_file
            uri: {upstream.url}
            order: 10
            predicates:
              - Path=/o/**
          - id: second_in_file
            uri: {upstream_b.url}
            order: -1
            predicates:
              - Path=/o/**
          - id: same_order_first
            uri: {upstream.url}
            predicates:
              - Path=/tie/**
          - id: same_order_second
            uri: {upstream_b.url}
            predicates:
              - Path=/tie/**
        """
    )
    assert (await get(session, f"{gw.url}/o/x")).upstream == "b"
    # With equal order the file order decides.
    assert (await get(session, f"{gw.url}/tie/x")).upstream == "a"


async def test_route_without_predicates_matches_everything(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: specific
            uri: {upstream.url}
            predicates:
              - Path=/only/**
          - id: catch_all
            uri: {upstream_b.url}
            order: 100
        """
    )
    assert (await get(session, f"{gw.url}/only/x")).upstream == "a"
    for path in ("/", "/anything", "/deep/er/path?q=1"):
        answer = await call(session, "POST", f"{gw.url}{path}", data=b"x")
        assert (answer.status, answer.upstream) == (200, "b"), path
