"""The gateway actuator's JSON as SCG 5.0.4 answers it, SCG's refresh by metadata, and SCG's
request metrics beside ours.

Every expected SCG value here was read off a real SCG 5.0.4 (the test peer with the actuator and
the Prometheus registry) given the same routes as an application.yml. Only what is a JVM's own
is replaced: the always-true seed every route predicate starts with (a lambda's class name,
``RouteDefinitionRouteLocator$$Lambda$1299/0x00007fdfb05e4440`` in that run) and identity
hashes, which we render as stand-ins of the same form.
"""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.management.actuator import refresh_scope
from gateway.management.shapes import PREDICATE_SEED, filter_class, java_hash, predicate_class
from gateway.observability.metrics import WindowMax, scg_status
from gateway.plugins import Factories
from tests.conftest import MakeGateway
from tests.support.echoed import get
from tests.support.gateway import RunningGateway, spawn_gateway, start_gateway
from tests.support.upstream import Upstream, start_upstream

SEED = PREDICATE_SEED
R1_METADATA = {"team": "colours", "list": {"0": "x", "1": "y"}, "nested": {"a": "b"}, "num": 1}
DEFAULT = "[[AddResponseHeader name = 'X-Default', value = 'yes', override = true], order = 1]"


def shapes_routes(up: Upstream) -> str:
    return rf"""
    default-filters:
      - AddResponseHeader=X-Default, yes
    services:
      Orders-Svc: [{{host: 127.0.0.1, port: {up.port}}}]
    routes:
      - id: r1
        uri: {up.url}
        order: 5
        predicates:
          - Path=/r1/{{segment}}
        filters:
          - AddRequestHeader=X-Request-red, blue
          - StripPrefix=1
        metadata:
          team: colours
          num: 1
          nested: {{a: b}}
          list: [x, y]
      - id: r2
        uri: {up.url}
        predicates:
          - name: Path
            args:
              patterns: [/r2/**, /r2b/**]
              matchTrailingSlash: false
          - Method=GET,POST
          - Header=X-Id, \d+
        filters:
          - name: Retry
            args:
              retries: 3
              statuses: BAD_GATEWAY
              methods: GET,POST
              backoff: {{firstBackoff: 10ms, maxBackoff: 50ms, factor: 2,
                         basedOnPreviousValue: false}}
      - id: r8
        uri: lb://Orders-Svc
        predicates:
          - Path=/t/**
        metadata:
          group: blue
      - id: r9
        uri: {up.url}
        predicates:
          - Path=/r9/**
        metadata:
          zeta: "1"
          alpha: true
          deep: {{zz: 1, aa: [p, {{q: r}}], mm: x, bb: y, cc: z}}
          empty: ""
          version: 2.0
    """


async def rewrite(path: Path, text: str) -> None:
    await asyncio.to_thread(path.write_text, text)


async def fetch(session: aiohttp.ClientSession, method: str, url: str) -> tuple[int, Any]:
    async with session.request(method, url) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


@pytest.fixture
async def shapes_gateway(upstream: Upstream, make_gateway: MakeGateway) -> RunningGateway:
    return await make_gateway(shapes_routes(upstream))


# -- routes ----------------------------------------------------------------------------------------


async def test_routes_are_scg_objects_keys_in_scg_order(
    shapes_gateway: RunningGateway, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    status, routes = await fetch(
        session, "GET", f"{shapes_gateway.management_url}/actuator/gateway/routes"
    )
    assert status == 200
    by_id = {route["route_id"]: route for route in routes}
    assert [r["route_id"] for r in routes] == ["r2", "r8", "r9", "r1"]  # by order, stable
    # No metadata key when the route has none; keys in SCG's HashMap order.
    assert list(by_id["r2"]) == ["predicate", "route_id", "filters", "uri", "order"]
    assert list(by_id["r8"]) == ["predicate", "metadata", "route_id", "filters", "uri", "order"]
    assert by_id["r8"] == {
        "predicate": f"({SEED} && Paths: [/t/**], match trailing slash: true)",
        "metadata": {"group": "blue"},
        "route_id": "r8",
        "filters": [DEFAULT],
        "uri": "lb://Orders-Svc",
        "order": 0,
    }
    # Default and route filters are numbered apart, then merged by number.
    assert by_id["r1"] == {
        "predicate": f"({SEED} && Paths: [/r1/{{segment}}], match trailing slash: true)",
        # A HashMap's order; a document's list as the index map Spring's binder makes of it.
        "metadata": R1_METADATA,
        "route_id": "r1",
        "filters": [
            DEFAULT,
            "[[AddRequestHeader X-Request-red = 'blue'], order = 1]",
            "[[StripPrefix parts = 1], order = 2]",
        ],
        "uri": upstream.url,
        "order": 5,
    }  # fmt: skip
    assert list(by_id["r1"]["metadata"]) == ["team", "list", "nested", "num"]
    # Predicates nest left to right from SCG's always-true seed.
    assert by_id["r2"]["predicate"] == (
        f"((({SEED} && Paths: [/r2/**, /r2b/**], match trailing slash: false) "
        "&& Methods: [GET, POST]) && Header: X-Id regexp=\\d+)"
    )
    r9 = by_id["r9"]["metadata"]
    assert list(r9) == ["zeta", "deep", "version", "alpha", "empty"]
    assert r9["deep"] == {
        "zz": 1,
        "aa": {"0": "p", "1": {"q": "r"}},
        "mm": "x",
        "bb": "y",
        "cc": "z",
    }


async def test_route_by_id_and_an_unknown_id(
    shapes_gateway: RunningGateway, session: aiohttp.ClientSession
) -> None:
    base = f"{shapes_gateway.management_url}/actuator/gateway/routes"
    _, listed = await fetch(session, "GET", base)
    status, r1 = await fetch(session, "GET", f"{base}/r1")
    assert (status, r1) == (200, next(r for r in listed if r["route_id"] == "r1"))
    # SCG answers 404 with no body; ours keeps the status and says why.
    status, missing = await fetch(session, "GET", f"{base}/nope")
    assert status == 404
    assert "nope" in missing["message"]


async def test_combined_filters_is_the_route_text_to_its_order(
    shapes_gateway: RunningGateway, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    base = f"{shapes_gateway.management_url}/actuator/gateway/routes"
    status, r1 = await fetch(session, "GET", f"{base}/r1/combinedfilters")
    assert status == 200
    assert r1 == {
        f"Route{{id='r1', uri={upstream.url}, order=5, predicate=({SEED} && Paths: "
        f"[/r1/{{segment}}], match trailing slash: true), gatewayFilters=[{DEFAULT}, "
        "[[AddRequestHeader X-Request-red = 'blue'], order = 1], [[StripPrefix parts = 1], "
        "order = 2]], metadata={team=colours, list={0=x, 1=y}, nested={a=b}, num=1}}": 5
    }
    _, r9 = await fetch(session, "GET", f"{base}/r9/combinedfilters")
    (text,) = r9
    assert text.endswith(
        "metadata={zeta=1, deep={zz=1, aa={0=p, 1={q=r}}, mm=x, bb=y, cc=z}, version=2.0, "
        "alpha=true, empty=}}"
    )
    assert await fetch(session, "GET", f"{base}/nope/combinedfilters") == (200, {})


# -- definitions -----------------------------------------------------------------------------------


async def test_route_definitions_as_spring_bound_them(
    shapes_gateway: RunningGateway, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    url = f"{shapes_gateway.management_url}/actuator/gateway/routedefinitions"
    status, definitions = await fetch(session, "GET", url)
    assert status == 200
    by_id = {d["id"]: d for d in definitions}
    assert list(by_id["r1"]) == [
        "enabled",
        "filters",
        "id",
        "metadata",
        "order",
        "predicates",
        "uri",
    ]
    assert by_id["r1"] == {
        "enabled": True,
        "filters": [
            {"args": {"_genkey_0": "X-Request-red", "_genkey_1": "blue"},
             "name": "AddRequestHeader"},
            {"args": {"_genkey_0": "1"}, "name": "StripPrefix"},
        ],
        "id": "r1",
        "metadata": R1_METADATA,
        "order": 5,
        "predicates": [{"args": {"_genkey_0": "/r1/{segment}"}, "name": "Path"}],
        "uri": upstream.url,
    }  # fmt: skip
    # Expanded arguments flattened as Spring binds them into a Map<String, String>.
    assert by_id["r2"]["predicates"] == [
        {
            "args": {"patterns.0": "/r2/**", "patterns.1": "/r2b/**",
                     "matchTrailingSlash": "false"},
            "name": "Path",
        },
        {"args": {"_genkey_0": "GET", "_genkey_1": "POST"}, "name": "Method"},
        {"args": {"_genkey_0": "X-Id", "_genkey_1": "\\d+"}, "name": "Header"},
    ]  # fmt: skip
    assert by_id["r2"]["filters"] == [
        {
            "args": {
                "retries": "3", "statuses": "BAD_GATEWAY", "methods": "GET,POST",
                "backoff.firstBackoff": "10ms", "backoff.maxBackoff": "50ms",
                "backoff.factor": "2", "backoff.basedOnPreviousValue": "false",
            },
            "name": "Retry",
        }
    ]  # fmt: skip
    assert by_id["r2"]["metadata"] == {}


async def test_a_posted_route_keeps_its_metadata_as_posted(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway("routes: []", management_write=True)
    base = f"{gw.management_url}/actuator/gateway"
    posted = {
        "uri": upstream.url,
        "predicates": [{"name": "Path", "args": {"_genkey_0": "/n1/**"}}],
        "metadata": {"group": "blue", "n": 1, "tags": ["a", "b"]},
    }
    async with session.post(f"{base}/routes/new1", json=posted) as response:
        assert response.status == 201
    _, definitions = await fetch(session, "GET", f"{base}/routedefinitions")
    # Jackson's LinkedHashMap in the definition, a HashMap copy in the route; lists stay lists.
    assert definitions[0]["metadata"] == {"group": "blue", "n": 1, "tags": ["a", "b"]}
    assert list(definitions[0]["metadata"]) == ["group", "n", "tags"]
    _, route = await fetch(session, "GET", f"{base}/routes/new1")
    assert list(route["metadata"]) == ["n", "group", "tags"]


# -- what is supported -----------------------------------------------------------------------------

_FACTORY_KEY = re.compile(r"^\[(\w+)@[0-9a-f]+ configClass = ([\w.]+)\]$")


def config_classes(listed: dict[str, None]) -> dict[str, str]:
    """Factory class -> config class, from ``/routefilters`` or ``/routepredicates``."""
    out: dict[str, str] = {}
    for key in listed:
        found = _FACTORY_KEY.match(key)
        assert found is not None, key
        out[found.group(1)] = found.group(2)
    return out


async def test_a_switched_off_factory_is_not_listed(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    # As in SCG, where filter.<name>.enabled: false leaves no such bean to list.
    gw = await make_gateway(
        f"""
        spring.cloud.gateway.server.webflux:
          filter.retry.enabled: false
          predicate: {{weight: {{enabled: false}}}}
          routes: [{{id: r, uri: '{upstream.url}'}}]
        """
    )
    base = f"{gw.management_url}/actuator/gateway"
    _, filters = await fetch(session, "GET", f"{base}/routefilters")
    _, predicates = await fetch(session, "GET", f"{base}/routepredicates")
    assert "RetryGatewayFilterFactory" not in config_classes(filters)
    assert "StripPrefixGatewayFilterFactory" in config_classes(filters)
    assert "WeightRoutePredicateFactory" not in config_classes(predicates)
    assert "PathRoutePredicateFactory" in config_classes(predicates)


async def test_route_filters_and_predicates_in_scg_format(
    shapes_gateway: RunningGateway, session: aiohttp.ClientSession
) -> None:
    base = f"{shapes_gateway.management_url}/actuator/gateway"
    builtin = Factories.builtin()
    for path, count in (
        ("routefilters", len(builtin.filters)),
        ("routepredicates", len(builtin.predicates)),
    ):
        status, listed = await fetch(session, "GET", f"{base}/{path}")
        assert status == 200
        assert len(listed) == count
        assert set(listed.values()) == {None}  # no factory is Ordered
        assert all(_FACTORY_KEY.match(key) for key in listed), listed
    _, filters = await fetch(session, "GET", f"{base}/routefilters")
    shown = config_classes(filters)
    assert shown["AddRequestHeaderGatewayFilterFactory"] == (
        "AbstractNameValueGatewayFilterFactory.NameValueConfig"
    )
    assert (
        shown["RemoveRequestHeaderGatewayFilterFactory"]
        == "AbstractGatewayFilterFactory.NameConfig"
    )
    assert shown["RetryGatewayFilterFactory"] == "RetryGatewayFilterFactory.RetryConfig"
    assert shown["PreserveHostHeaderGatewayFilterFactory"] == "Object"
    assert shown["SpringCloudCircuitBreakerResilience4JFilterFactory"] == (
        "SpringCloudCircuitBreakerFilterFactory.Config"
    )
    _, predicates = await fetch(session, "GET", f"{base}/routepredicates")
    shown = config_classes(predicates)
    assert shown["WeightRoutePredicateFactory"] == "WeightConfig"
    assert shown["PathRoutePredicateFactory"] == "PathRoutePredicateFactory.Config"


def test_a_plugin_factory_is_named_like_an_scg_one_without_a_config_class() -> None:
    assert filter_class("InjectDelay") == ("InjectDelayGatewayFilterFactory", "Object")
    assert predicate_class("HeaderPrefix") == ("HeaderPrefixRoutePredicateFactory", "Object")
    assert filter_class("SetStatus") == (
        "SetStatusGatewayFilterFactory",
        "SetStatusGatewayFilterFactory.Config",
    )


async def test_global_filters_name_the_code_doing_each_scg_global_filters_work(
    shapes_gateway: RunningGateway, session: aiohttp.ClientSession
) -> None:
    url = f"{shapes_gateway.management_url}/actuator/gateway/globalfilters"
    status, listed = await fetch(session, "GET", url)
    assert status == 200
    assert listed == {
        "gateway.engine.response_writer.ResponseWriter": -1,
        "gateway.observability.observer.RequestObserver": 0,
        "gateway.routing.route.RouteUri": 10000,
        "resilience.picker.InstancePicker": 10150,
        "gateway.engine.upgrade.Tunnel": 2147483646,
        "gateway.forwarder.Forwarder": 2147483647,
        "gateway.dispatch.Dispatcher.forward": 2147483647,
    }


async def test_index_lists_each_endpoint_per_route_as_scg_does(
    shapes_gateway: RunningGateway, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    status, index = await fetch(session, "GET", f"{shapes_gateway.management_url}/actuator/gateway")
    assert status == 200
    hrefs = [(entry["href"].removeprefix("/actuator/gateway"), entry["methods"]) for entry in index]
    per_route = ["r2", "r8", "r9", "r1"]
    assert hrefs == [
        ("/routedefinitions", ["GET"]),
        ("/globalfilters", ["GET"]),
        ("/routefilters", ["GET"]),
        *((f"/routes/{r}/combinedfilters", ["GET"]) for r in per_route),
        ("/routes", ["GET"]),  # SCG also takes POST here (several routes), we do not
        *((f"/routes/{r}", ["POST", "DELETE", "GET"]) for r in per_route),
        ("/", ["GET"]),
        ("/routepredicates", ["GET"]),
        ("/refresh", ["POST"]),
        ("/services", ["GET"]),  # ours
        ("/mirrors", ["GET"]),  # ours
        ("/explain", ["GET", "POST"]),  # ours
        ("/stats", ["GET"]),  # ours
        ("/stats/stream", ["GET"]),  # ours
        ("/config", ["GET"]),  # ours
    ]
    # As in SCG, every path is expanded per route: without routes, nothing is listed.
    empty = await make_gateway("routes: []")
    assert await fetch(session, "GET", f"{empty.management_url}/actuator/gateway") == (200, [])


# -- refresh by metadata ---------------------------------------------------------------------------


def scoped_routes(
    up: Upstream, *, moved: str | None = None, added: dict[str, str] | None = None
) -> str:
    """blue1, red1, plain and numbered to ``up`` (or all to ``moved``), then ``added`` routes
    (id -> group) to ``moved``."""
    routes = {"blue1": "{group: blue}", "red1": "{group: red}", "plain": "{}"}
    routes["numbered"] = "{version: 2}"
    routes.update({route_id: f"{{group: {group}}}" for route_id, group in (added or {}).items()})
    lines = ["routes:"]
    for route_id, metadata in routes.items():
        lines.append(
            f"  - {{id: {route_id}, uri: '{moved or up.url}', "
            f"predicates: ['Path=/{route_id}/**'], metadata: {metadata}}}"
        )
    return "\n".join(lines) + "\n"


async def served(session: aiohttp.ClientSession, gw: RunningGateway, route_id: str) -> str | None:
    answer = await get(session, f"{gw.url}/{route_id}/x")
    return answer.upstream if answer.status == 200 else str(answer.status)


async def test_refresh_by_metadata_replaces_only_the_matching_routes(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(scoped_routes(upstream))
    assert gw.gateway.settings.config is not None
    path = Path(gw.gateway.settings.config)
    refresh = f"{gw.management_url}/actuator/gateway/refresh"
    # In the file, everything moves to b, and a blue and a red route are added.
    added = {"blue2": "blue", "red2": "red"}
    await rewrite(path, scoped_routes(upstream, moved=upstream_b.url, added=added))

    async with session.post(refresh, params={"metadata": "group:blue"}) as response:
        assert (response.status, await response.read()) == (200, b"")
    assert await served(session, gw, "blue1") == "b"
    assert await served(session, gw, "blue2") == "b"
    for unchanged in ("red1", "plain", "numbered"):
        assert await served(session, gw, unchanged) == "a"
    assert await served(session, gw, "red2") == "404"
    # The refreshed routes come first among routes of equal order, as in SCG.
    _, listed = await fetch(session, "GET", f"{gw.management_url}/actuator/gateway/routes")
    assert [r["route_id"] for r in listed] == ["blue1", "blue2", "red1", "plain", "numbered"]

    # SCG compares with Java's equals against the string: a number never matches.
    async with session.post(refresh, params={"metadata": "version:2"}) as response:
        assert response.status == 200
    assert await served(session, gw, "numbered") == "a"
    # Every key must match (comma-separated here, repeated below).
    async with session.post(refresh, params={"metadata": "group:red,team:x"}) as response:
        assert response.status == 200
    assert await served(session, gw, "red1") == "a"

    # blue1 leaves the file and blue2 turns red: both matched, neither matches now, so both
    # are dropped until a full refresh (SCG's way); the red ones are left alone.
    document = scoped_routes(upstream, moved=upstream_b.url, added={"blue2": "red", "red2": "red"})
    await rewrite(path, "\n".join(line for line in document.splitlines() if "blue1" not in line))
    async with session.post(refresh, params=[("metadata", "group:blue")]) as response:
        assert response.status == 200
    assert await served(session, gw, "blue1") == "404"
    assert await served(session, gw, "blue2") == "404"
    assert await served(session, gw, "red1") == "a"

    # Without the parameter: everything, as before.
    async with session.post(refresh) as response:
        assert response.status == 200
    for route_id in ("red1", "plain", "numbered", "blue2", "red2"):
        assert await served(session, gw, route_id) == "b"
    assert await served(session, gw, "blue1") == "404"


async def test_refresh_by_metadata_refuses_bad_input_and_keeps_the_routes(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(scoped_routes(upstream))
    assert gw.gateway.settings.config is not None
    path = Path(gw.gateway.settings.config)
    refresh = f"{gw.management_url}/actuator/gateway/refresh"
    for bad, said in (("group", "has no value"), ("group:a,group:b", "given twice")):
        status, body = await fetch(session, "POST", f"{refresh}?metadata={bad}")
        assert status == 400
        assert said in body["message"]
    await rewrite(path, scoped_routes(upstream, moved=upstream_b.url).replace("Path=", "Paht="))
    status, body = await fetch(session, "POST", f"{refresh}?metadata=group:blue")
    assert status == 400
    assert "Paht" in body["message"]
    assert await served(session, gw, "blue1") == "a"

    several = await make_gateway(scoped_routes(upstream), workers=2)
    url = f"{several.management_url}/actuator/gateway/refresh?metadata=group:blue"
    status, body = await fetch(session, "POST", url)
    assert status == 409
    assert "GATEWAY_WORKERS" in body["message"]


def test_refresh_scope_reads_metadata_as_spring_and_scg_do() -> None:
    assert refresh_scope([]) == {}
    assert refresh_scope([""]) == {}  # Spring binds an empty value to an empty list
    assert refresh_scope(["a:b", "c:d"]) == {"a": "b", "c": "d"}
    assert refresh_scope(["a:b, c:d"]) == {"a": "b", "c": "d"}
    assert refresh_scope(["url:http://x"]) == {"url": "http"}  # split(":")[1], as SCG
    assert refresh_scope(["a::b"]) == {"a": ""}
    for bad in (["a"], ["a:"], ["a:b", "a:c"]):
        with pytest.raises(ValueError, match=r"no value|twice"):
            refresh_scope(bad)


# -- metrics ---------------------------------------------------------------------------------------


SCG_COUNT = "spring_cloud_gateway_requests_seconds_count"


def samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def scg_key(name: str, method: str, code: int, route: str, uri: str) -> str:
    outcome, status = scg_status(code)
    return (
        f'spring_cloud_gateway_requests_seconds_{name}{{httpMethod="{method}",'
        f'httpStatusCode="{code}",outcome="{outcome}",routeId="{route}",routeUri="{uri}",'
        f'status="{status}"}}'
    )


def metrics_routes(up: Upstream, plain_uri: str | None = None) -> str:
    return f"""
    services:
      Orders-Svc: [{{host: 127.0.0.1, port: {up.port}}}]
    routes:
      - id: api
        uri: lb://Orders-Svc
        predicates: [Path=/api/**]
        filters: [StripPrefix=1]
      - id: plain
        uri: {plain_uri or up.url}
        predicates: [Path=/plain/**]
        filters: [StripPrefix=1]
    """


async def scrape(session: aiohttp.ClientSession, gw: RunningGateway) -> str:
    async with session.get(f"{gw.management_url}/actuator/prometheus") as response:
        assert response.status == 200
        return await response.text()


async def test_scg_request_metrics_beside_ours_with_scg_labels(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(metrics_routes(upstream))
    sent = [
        *[("GET", "/api/ok")] * 3,
        ("GET", "/api/status/404"),
        ("GET", "/plain/status/299"),
        ("GET", "/plain/status/503"),
        ("POST", "/plain/x"),
        *[("GET", "/missing")] * 2,
    ]
    for method, target in sent:
        async with session.request(method, f"{gw.url}{target}") as response:
            await response.read()
    text = await scrape(session, gw)
    values = samples(text)
    lb, plain = "lb://Orders-Svc", upstream.url
    expected = {
        scg_key("count", "GET", 200, "api", lb): 3,
        scg_key("count", "GET", 404, "api", lb): 1,
        scg_key("count", "GET", 299, "plain", plain): 1,
        scg_key("count", "GET", 503, "plain", plain): 1,
        scg_key("count", "POST", 200, "plain", plain): 1,
    }
    counts = {k: v for k, v in values.items() if k.startswith(SCG_COUNT)}
    assert counts == expected  # a request no route matched is not SCG's to count
    # Two of them spelled out, as SCG 5.0.4 wrote them.
    assert (
        'spring_cloud_gateway_requests_seconds_count{httpMethod="GET",httpStatusCode="404",'
        'outcome="CLIENT_ERROR",routeId="api",routeUri="lb://Orders-Svc",status="NOT_FOUND"}'
    ) in counts
    assert (
        'spring_cloud_gateway_requests_seconds_count{httpMethod="GET",httpStatusCode="299",'
        f'outcome="CUSTOM",routeId="plain",routeUri="{plain}",status="299"}}'
    ) in counts
    ok_sum = values[scg_key("sum", "GET", 200, "api", lb)]
    ok_max = values[scg_key("max", "GET", 200, "api", lb)]
    assert 0 < ok_max <= ok_sum
    assert values["spring_cloud_gateway_routes_count"] == 2
    assert "# TYPE spring_cloud_gateway_requests_seconds summary" in text
    assert "# TYPE spring_cloud_gateway_requests_seconds_max gauge" in text
    assert "spring_cloud_gateway_requests_seconds_created" not in text  # SCG has none
    # Ours, unchanged.
    ours = 'meshgate_requests_total{lane="stable",method="GET",route="api",status="2xx"}'
    assert values[ours] == 3
    assert values['meshgate_requests_total{lane="",method="GET",route="",status="4xx"}'] == 2


async def test_route_uri_label_follows_a_reload_without_relabelling_what_was_counted(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(metrics_routes(upstream))
    assert gw.gateway.settings.config is not None
    assert (await get(session, f"{gw.url}/plain/x")).upstream == "a"
    await rewrite(
        Path(gw.gateway.settings.config), textwrap.dedent(metrics_routes(upstream, upstream_b.url))
    )
    async with session.post(f"{gw.management_url}/actuator/gateway/refresh") as response:
        assert response.status == 200
    assert (await get(session, f"{gw.url}/plain/x")).upstream == "b"
    values = samples(await scrape(session, gw))
    assert values[scg_key("count", "GET", 200, "plain", upstream.url)] == 1
    assert values[scg_key("count", "GET", 200, "plain", upstream_b.url)] == 1


async def test_metrics_enabled_false_drops_scg_series_only_and_a_reload_brings_them_back(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    switched_off = """
    spring:
      cloud:
        gateway:
          server:
            webflux:
              metrics:
                enabled: false
    """
    gw = await make_gateway(
        textwrap.dedent(switched_off) + textwrap.dedent(metrics_routes(upstream))
    )
    assert (await get(session, f"{gw.url}/api/ok")).status == 200
    text = await scrape(session, gw)
    assert "spring_cloud_gateway" not in text
    ours = 'meshgate_requests_total{lane="stable",method="GET",route="api",status="2xx"}'
    assert samples(text)[ours] == 1

    assert gw.gateway.settings.config is not None
    await rewrite(Path(gw.gateway.settings.config), textwrap.dedent(metrics_routes(upstream)))
    async with session.post(f"{gw.management_url}/actuator/gateway/refresh") as response:
        assert response.status == 200
    assert (await get(session, f"{gw.url}/api/ok")).status == 200
    values = samples(await scrape(session, gw))
    assert values[scg_key("count", "GET", 200, "api", "lb://Orders-Svc")] == 1


@pytest.mark.slow
async def test_scg_metrics_with_two_workers_sum_counts_and_take_the_largest_max(
    tmp_path: Path,
) -> None:
    upstream = await start_upstream("u")
    config = tmp_path / "routes.yml"
    config.write_text(f"routes: [{{id: all, uri: '{upstream.url}', predicates: [Path=/**]}}]\n")
    gateway = await asyncio.to_thread(spawn_gateway, config, tmp_path, GATEWAY_WORKERS="2")
    try:
        sent = 60

        def one() -> int:
            request = urllib.request.Request(f"{gateway.url}/x", headers={"Connection": "close"})
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)

        assert set(await asyncio.gather(*(asyncio.to_thread(one) for _ in range(sent)))) == {200}
        url = f"{gateway.management_url}/actuator/prometheus"
        count_key = scg_key("count", "GET", 200, "all", upstream.url)

        def read() -> str:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())

        deadline = time.monotonic() + 10
        text = ""
        while time.monotonic() < deadline:
            text = await asyncio.to_thread(read)
            if samples(text).get(count_key, 0) >= sent:
                break
            await asyncio.sleep(0.2)
        values = samples(text)
        assert values[count_key] == sent  # summed across workers, nothing twice
        max_lines = [k for k in values if k.startswith("spring_cloud_gateway_requests_seconds_max")]
        # One series, no pid label: the largest of the workers' windows.
        assert max_lines == [scg_key("max", "GET", 200, "all", upstream.url)]
        assert 0 < values[max_lines[0]] <= values[scg_key("sum", "GET", 200, "all", upstream.url)]
        assert values["spring_cloud_gateway_routes_count"] == 1
    finally:
        await asyncio.to_thread(gateway.stop)
        await upstream.runner.cleanup()


def test_scg_status_labels_are_springs() -> None:
    assert scg_status(200) == ("SUCCESSFUL", "OK")
    assert scg_status(302) == ("REDIRECTION", "FOUND")
    assert scg_status(413) == ("CLIENT_ERROR", "CONTENT_TOO_LARGE")  # Spring 7's name
    assert scg_status(422) == ("CLIENT_ERROR", "UNPROCESSABLE_CONTENT")
    assert scg_status(103) == ("INFORMATIONAL", "EARLY_HINTS")
    assert scg_status(504) == ("SERVER_ERROR", "GATEWAY_TIMEOUT")
    assert scg_status(299) == ("CUSTOM", "299")
    assert scg_status(499) == ("CUSTOM", "499")


def test_window_max_is_micrometers_two_minute_max() -> None:
    early = WindowMax(now=0.0)
    early.record(5.0, now=0.0)
    assert early.poll(119.9) == 5.0  # recorded at the start of a rotation: seen ~120 s
    assert early.poll(120.0) == 0.0
    late = WindowMax(now=0.0)
    late.record(3.0, now=39.9)
    assert late.poll(119.9) == 3.0
    assert late.poll(120.0) == 0.0  # recorded at the end of one: seen ~80 s
    kept = WindowMax(now=0.0)
    kept.record(2.0, now=10.0)
    kept.record(7.0, now=50.0)
    kept.record(1.0, now=100.0)
    assert kept.poll(100.0) == 7.0
    assert kept.poll(160.0) == 1.0  # 2 and 7 aged out, in turn
    idle = WindowMax(now=0.0)
    idle.record(4.0, now=1.0)
    assert idle.poll(1000.0) == 0.0


def test_java_hash_is_string_hash_code() -> None:
    # As Java 17 computes them; a character outside the BMP counts as its two UTF-16 units.
    assert java_hash("") == 0
    assert java_hash("team") == 3555933
    assert java_hash("\U0001f600") == (31 * 0xD83D + 0xDE00)


# -- against the real SCG, when the test peer is built ---------------------------------------------

_DIFFERENTIAL_ROUTES = r"""
spring:
  cloud:
    gateway:
      server:
        webflux:
          default-filters:
            - AddResponseHeader=X-Default, yes
          routes:
            - id: r1
              uri: UPSTREAM
              order: 5
              predicates:
                - Path=/r1/{segment}
              filters:
                - AddRequestHeader=X-Request-red, blue
                - StripPrefix=1
              metadata:
                team: colours
                num: 1
                nested: {a: b}
                list: [x, y]
            - id: r2
              uri: UPSTREAM
              predicates:
                - name: Path
                  args:
                    patterns: [/r2/**, /r2b/**]
                    matchTrailingSlash: false
                - Method=GET,POST
                - Header=X-Id, \d+
                - Weight=group1, 8
            - id: plain
              uri: UPSTREAM
              predicates:
                - Path=/plain/**
              filters:
                - StripPrefix=1
                - RewritePath=/red/?(?<segment>.*), /$\{segment}
                - SetStatus=401
              metadata:
                group: blue
            - id: status
              uri: UPSTREAM
              predicates:
                - Path=/status/**
            - id: nowhere
              uri: lb://Nowhere-Svc
              predicates:
                - Path=/lb/**
"""
_SCG_ACTUATOR = """
management:
  endpoints:
    web:
      exposure:
        include: gateway,prometheus,health
  endpoint:
    gateway:
      access: unrestricted
"""
_LAMBDA = re.compile(r"RouteDefinitionRouteLocator\$\$Lambda\$?\d*/0x[0-9a-f]+")


def _from_scg(value: Any) -> Any:
    """SCG's answer with its JVM-only parts (the predicate seed's lambda name) as ours."""
    return json.loads(_LAMBDA.sub(lambda _: SEED, json.dumps(value)))


async def test_same_shapes_and_metric_labels_as_a_real_scg(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    from tests.support.scg import scg_unavailable, start_scg

    unavailable = scg_unavailable()
    if unavailable is not None:
        pytest.skip(f"SCG differential: {unavailable}")
    upstream = await start_upstream("u")
    routes = _DIFFERENTIAL_ROUTES.replace("UPSTREAM", upstream.url)
    scg = await asyncio.to_thread(start_scg, routes + _SCG_ACTUATOR, tmp_path / "scg")
    config = tmp_path / "application.yml"
    config.write_text(routes)
    ours = await start_gateway(config)
    try:
        scg_base = f"{scg.management_url}/actuator/gateway"
        our_base = f"{ours.management_url}/actuator/gateway"

        async def both(path: str) -> tuple[Any, Any]:
            theirs = await fetch(session, "GET", scg_base + path)
            mine = await fetch(session, "GET", our_base + path)
            assert theirs[0] == mine[0] == 200, path
            return _from_scg(theirs[1]), mine[1]

        theirs, mine = await both("/routes")
        assert mine == theirs
        assert [list(route) for route in mine] == [list(route) for route in theirs]
        theirs, mine = await both("/routedefinitions")
        assert mine == theirs
        for route_id in ("r1", "r2", "plain", "status", "nowhere"):
            theirs, mine = await both(f"/routes/{route_id}")
            assert list(mine.items()) == list(theirs.items())
            theirs, mine = await both(f"/routes/{route_id}/combinedfilters")
            assert mine == theirs
        theirs, mine = await both("")
        # Ours serves no POST /routes, and has /services, /mirrors, /explain, /stats and
        # /config: otherwise SCG's list, in its order.
        for entry in theirs:
            if entry["href"].endswith("/gateway/routes"):
                entry["methods"] = ["GET"]
        ours_only = ("/services", "/mirrors", "/explain", "/stats", "/stats/stream", "/config")
        assert [e for e in mine if not e["href"].endswith(ours_only)] == theirs
        theirs, mine = await both("/routefilters")
        scg_classes, our_classes = config_classes(theirs), config_classes(mine)
        for name in scg_classes.keys() & our_classes.keys():
            assert our_classes[name] == scg_classes[name], name
        assert len(scg_classes.keys() & our_classes.keys()) >= 25
        theirs, mine = await both("/routepredicates")
        assert config_classes(theirs).items() >= config_classes(mine).items()

        requests = [("GET", "/plain/x"), ("POST", "/plain/x"), ("GET", "/status/404")]
        requests += [("GET", "/status/299"), ("GET", "/lb/x"), ("GET", "/missing")]
        counted: list[dict[str, float]] = []
        for base_url, management_url in (
            (scg.url, scg.management_url),
            (ours.url, ours.management_url),
        ):
            for method, target in requests:
                async with session.request(method, base_url + target) as response:
                    await response.read()
            async with session.get(f"{management_url}/actuator/prometheus") as response:
                values = samples(await response.text())
            counts = {k: v for k, v in values.items() if k.startswith(SCG_COUNT)}
            counted.append({**counts, "routes": values["spring_cloud_gateway_routes_count"]})
        assert counted[1] == counted[0]
    finally:
        await ours.gateway.stop()
        await asyncio.to_thread(scg.stop)
        await upstream.runner.cleanup()
