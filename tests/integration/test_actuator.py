"""The management port: health groups and SCG's gateway actuator API, on a running gateway."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import aiohttp

from gateway.management.shapes import PREDICATE_SEED as SEED
from tests.conftest import MakeGateway
from tests.support.echoed import get
from tests.support.gateway import RunningGateway
from tests.support.upstream import Upstream


def file_routes(upstream: Upstream) -> str:
    return f"""
    routes:
      - id: red
        uri: {upstream.url}
        order: 5
        predicates:
          - Path=/red/{{segment}}
        filters:
          - AddRequestHeader=X-Request-red, blue
          - StripPrefix=1
      - id: blue
        uri: {upstream.url}
        predicates:
          - Path=/blue/**
          - Method=GET
        metadata:
          team: colours
    """


async def status_and_json(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any]:
    async with session.request(method, url, **kwargs) as resp:
        body = await resp.read()
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, body.decode()


def config_path(gw: RunningGateway) -> Path:
    assert gw.gateway.settings.config is not None
    return Path(gw.gateway.settings.config)


# -- health --------------------------------------------------------------------------------------


async def test_health_groups(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(file_routes(upstream))
    status, health = await status_and_json(session, "GET", f"{gw.management_url}/actuator/health")
    assert (status, health["status"]) == (200, "UP")
    assert health["components"]["routes"]["details"]["count"] == 2
    for group in ("liveness", "readiness"):
        url = f"{gw.management_url}/actuator/health/{group}"
        assert await status_and_json(session, "GET", url) == (200, {"status": "UP"})


async def test_readiness_is_down_while_shutting_down(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(file_routes(upstream))
    gw.gateway.ready = False  # what stop() does first, before the listeners close
    url = f"{gw.management_url}/actuator/health/readiness"
    assert await status_and_json(session, "GET", url) == (503, {"status": "OUT_OF_SERVICE"})
    live = f"{gw.management_url}/actuator/health/liveness"
    assert await status_and_json(session, "GET", live) == (200, {"status": "UP"})


# -- reading routes ------------------------------------------------------------------------------


async def test_routes_in_scg_verbose_format(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(file_routes(upstream))
    status, routes = await status_and_json(
        session, "GET", f"{gw.management_url}/actuator/gateway/routes"
    )
    assert status == 200
    # Match order: by `order`, so "blue" (0) comes before "red" (5).
    assert [r["route_id"] for r in routes] == ["blue", "red"]
    blue, red = routes
    # SCG's keys, in its order; no metadata key without metadata (test_actuator_scg_shapes.py
    # has the rest of SCG's shapes).
    assert red == {
        "predicate": f"({SEED} && Paths: [/red/{{segment}}], match trailing slash: true)",
        "route_id": "red",
        "filters": [
            "[[AddRequestHeader X-Request-red = 'blue'], order = 1]",
            "[[StripPrefix parts = 1], order = 2]",
        ],
        "uri": upstream.url,
        "order": 5,
    }
    assert list(red) == ["predicate", "route_id", "filters", "uri", "order"]
    assert blue["predicate"] == (
        f"(({SEED} && Paths: [/blue/**], match trailing slash: true) && Methods: [GET])"
    )
    assert blue["filters"] == []
    assert blue["metadata"] == {"team": "colours"}


async def test_route_by_id(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(file_routes(upstream))
    base = f"{gw.management_url}/actuator/gateway/routes"
    status, red = await status_and_json(session, "GET", f"{base}/red")
    assert (status, red["route_id"], red["order"]) == (200, "red", 5)
    status, missing = await status_and_json(session, "GET", f"{base}/nope")
    assert status == 404
    assert "nope" in missing["message"]


async def test_route_definitions(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(file_routes(upstream))
    status, definitions = await status_and_json(
        session, "GET", f"{gw.management_url}/actuator/gateway/routedefinitions"
    )
    assert status == 200
    by_id = {d["id"]: d for d in definitions}
    # As SCG keeps them: shortcut values under generated keys, properties by name.
    assert by_id["red"] == {
        "enabled": True,
        "filters": [
            {"args": {"_genkey_0": "X-Request-red", "_genkey_1": "blue"},
             "name": "AddRequestHeader"},
            {"args": {"_genkey_0": "1"}, "name": "StripPrefix"},
        ],
        "id": "red",
        "metadata": {},
        "order": 5,
        "predicates": [{"args": {"_genkey_0": "/red/{segment}"}, "name": "Path"}],
        "uri": upstream.url,
    }  # fmt: skip
    assert [p["name"] for p in by_id["blue"]["predicates"]] == ["Path", "Method"]


async def test_global_filters_route_filters_and_route_predicates(
    make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway("routes: []")
    base = f"{gw.management_url}/actuator/gateway"
    status, global_filters = await status_and_json(session, "GET", f"{base}/globalfilters")
    assert status == 200
    assert all(isinstance(order, int) for order in global_filters.values())
    assert global_filters["gateway.forwarder.Forwarder"] == 2147483647  # NettyRoutingFilter's
    status, route_filters = await status_and_json(session, "GET", f"{base}/routefilters")
    assert status == 200
    filter_names = {
        "AddRequestHeader", "AddRequestHeadersIfNotPresent", "AddRequestParameter",
        "AddResponseHeader", "DedupeResponseHeader", "MapRequestHeader", "PrefixPath",
        "PreserveHostHeader", "RedirectTo", "RemoveRequestHeader", "RemoveRequestParameter",
        "RemoveResponseHeader", "RequestHeaderSize", "RequestSize",
        "RewriteLocationResponseHeader", "RewritePath", "RewriteResponseHeader", "SecureHeaders",
        "SetPath", "SetRequestHeader", "SetRequestHostHeader", "SetResponseHeader", "SetStatus",
        "StripPrefix",
    }  # fmt: skip
    shown = {key.split("@")[0] + "]" for key in route_filters}  # less SCG's identity hash
    assert {f"[{name}GatewayFilterFactory]" for name in filter_names} <= shown
    status, route_predicates = await status_and_json(session, "GET", f"{base}/routepredicates")
    assert status == 200
    predicate_names = {
        "After", "Before", "Between", "Cookie", "Header", "Host", "Method", "Path", "Query",
        "RemoteAddr", "Weight",
    }  # fmt: skip
    expected = {f"[{name}RoutePredicateFactory]" for name in predicate_names}
    assert expected <= {key.split("@")[0] + "]" for key in route_predicates}


# -- writing routes ------------------------------------------------------------------------------


async def test_route_writes_are_refused_by_default(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(file_routes(upstream))
    url = f"{gw.management_url}/actuator/gateway/routes"
    definition = {"uri": upstream.url, "predicates": ["Path=/new/**"]}
    status, body = await status_and_json(session, "POST", f"{url}/new", json=definition)
    assert status == 403
    assert "GATEWAY_MANAGEMENT_WRITE" in body["message"]
    status, _ = await status_and_json(session, "DELETE", f"{url}/red")
    assert status == 403
    assert (await get(session, f"{gw.url}/new/x")).status == 404
    assert (await get(session, f"{gw.url}/red/x")).status == 200


async def test_post_and_delete_a_route(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(file_routes(upstream), management_write=True)
    url = f"{gw.management_url}/actuator/gateway/routes"
    definition = {
        "uri": upstream_b.url,
        "predicates": [{"name": "Path", "args": {"patterns": ["/new/**"]}}],
        "filters": [{"name": "AddRequestHeader", "args": {"name": "X-New", "value": "yes"}}],
    }
    assert (await get(session, f"{gw.url}/new/x")).status == 404
    status, _ = await status_and_json(session, "POST", f"{url}/new_route", json=definition)
    assert status == 201
    served = await get(session, f"{gw.url}/new/x")
    assert (served.status, served.upstream) == (200, "b")
    assert served.request_headers["X-New"] == "yes"
    status, view = await status_and_json(session, "GET", f"{url}/new_route")
    assert (status, view["uri"]) == (200, upstream_b.url)

    status, _ = await status_and_json(session, "DELETE", f"{url}/new_route")
    assert status == 200
    assert (await get(session, f"{gw.url}/new/x")).status == 404
    status, _ = await status_and_json(session, "DELETE", f"{url}/new_route")
    assert status == 404


async def test_post_a_route_with_generated_keys(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    # The shape SCG's own clients and dashboards POST (and what GET routedefinitions on SCG
    # returns for shortcut-configured routes).
    gw = await make_gateway(file_routes(upstream), management_write=True)
    url = f"{gw.management_url}/actuator/gateway/routes"
    definition = {
        "uri": upstream_b.url,
        "predicates": [{"name": "Path", "args": {"_genkey_0": "/new/**"}}],
        "filters": [
            {"name": "AddRequestHeader", "args": {"_genkey_0": "X-New", "_genkey_1": "yes"}}
        ],
    }
    status, body = await status_and_json(session, "POST", f"{url}/new_route", json=definition)
    assert status == 201, body
    served = await get(session, f"{gw.url}/new/x")
    assert (served.status, served.upstream) == (200, "b")
    assert served.request_headers["X-New"] == "yes"


async def test_invalid_posted_route_is_400_and_changes_nothing(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(file_routes(upstream), management_write=True)
    url = f"{gw.management_url}/actuator/gateway/routes"
    _, before = await status_and_json(session, "GET", url)
    bad_regexp = {
        "uri": upstream.url,
        "predicates": [{"name": "Path", "args": {"patterns": ["/bad/**"]}}],
        "filters": [{"name": "RewritePath", "args": {"regexp": "/bad/(", "replacement": "/"}}],
    }
    status, body = await status_and_json(session, "POST", f"{url}/bad", json=bad_regexp)
    assert status == 400
    assert "RewritePath" in body["message"]
    assert "regexp" in body["message"]
    unknown = {"uri": upstream.url, "predicates": [{"name": "Paht", "args": {}}]}
    status, body = await status_and_json(session, "POST", f"{url}/bad", json=unknown)
    assert status == 400
    assert "Paht" in body["message"]
    assert "Path" in body["message"]
    status, body = await status_and_json(session, "POST", f"{url}/bad", data=b"not json")
    assert status == 400
    _, after = await status_and_json(session, "GET", url)
    assert after == before
    assert (await get(session, f"{gw.url}/bad/x")).status == 404


# -- refresh -------------------------------------------------------------------------------------


async def test_refresh_rereads_the_route_file_and_keeps_it_on_error(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(file_routes(upstream))
    refresh = f"{gw.management_url}/actuator/gateway/refresh"
    path = config_path(gw)
    path.write_text(
        textwrap.dedent(
            f"""
            routes:
              - id: fresh
                uri: {upstream_b.url}
                predicates:
                  - Path=/fresh/**
            """
        )
    )
    # Nothing changes until the refresh.
    assert (await get(session, f"{gw.url}/fresh/x")).status == 404
    status, _ = await status_and_json(session, "POST", refresh)
    assert status == 200
    fresh = await get(session, f"{gw.url}/fresh/x")
    assert (fresh.status, fresh.upstream) == (200, "b")
    assert (await get(session, f"{gw.url}/red/x")).status == 404

    path.write_text(
        textwrap.dedent(
            f"""
            routes:
              - id: broken
                uri: {upstream.url}
                predicates:
                  - Path=/broken/**
                filters:
                  - StripPrefx=1
            """
        )
    )
    status, body = await status_and_json(session, "POST", refresh)
    assert status == 400
    assert "StripPrefx" in body["message"]
    assert "StripPrefix" in body["message"]
    assert (await get(session, f"{gw.url}/fresh/x")).upstream == "b"
    assert (await get(session, f"{gw.url}/broken/x")).status == 404
    _, health = await status_and_json(session, "GET", f"{gw.management_url}/actuator/health")
    assert "StripPrefx" in health["components"]["routes"]["details"]["lastError"]
