"""Mirror and shadow comparison end to end: a real gateway in this process, a real primary and a
real shadow (aiohttp servers on 127.0.0.1) that record what reaches them."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from gateway.app import Gateway
from gateway.errors import ConfigError
from gateway.plugins import Factories
from gateway.process import with_document_settings
from gateway.settings import load_settings
from tests.conftest import MakeGateway
from tests.support.gateway import RunningGateway
from tests.support.ports import free_port
from tests.support.upstream import serve

Answer = Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: CIMultiDict[str]
    sha256: str
    length: int


@dataclass
class Recorder:
    """A real upstream that records each request it gets (after reading its whole body)."""

    name: str
    delay: float = 0.0
    answer: Answer | None = None
    seen: list[Seen] = field(default_factory=list)
    port: int = 0
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        digest = hashlib.sha256(body).hexdigest()
        self.seen.append(
            Seen(
                request.method,
                request.path,
                request.query_string,
                CIMultiDict(request.headers),
                digest,
                len(body),
            )
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.answer is not None:
            return await self.answer(request, body)
        return web.json_response({"upstream": self.name, "sha256": digest, "length": len(body)})

    async def start(self) -> Recorder:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner, self.port = await serve(app, shutdown_timeout=0.1)
        return self


MakeRecorder = Callable[..., Awaitable[Recorder]]


@pytest.fixture
async def recorder() -> AsyncIterator[MakeRecorder]:
    started: list[Recorder] = []

    async def make(name: str, **options: Any) -> Recorder:
        server = await Recorder(name, **options).start()
        started.append(server)
        return server

    yield make
    for server in started:
        if server.runner is not None:
            await server.runner.cleanup()


async def until(probe: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def mirror_route(primary: Recorder, mirror_filter: str, *, before: str = "") -> str:
    return f"""
        routes:
          - id: orders
            uri: {primary.url}
            predicates: [Path=/orders/**]
            filters:{before}
              - {mirror_filter}
        """


async def mirrors_view(session: aiohttp.ClientSession, gw: RunningGateway) -> dict[str, Any]:
    async with session.get(f"{gw.management_url}/actuator/gateway/mirrors") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        view: dict[str, Any] = await response.json()
        return view


async def route_view(
    session: aiohttp.ClientSession, gw: RunningGateway, route: str = "orders"
) -> dict[str, Any]:
    view = await mirrors_view(session, gw)
    found: list[dict[str, Any]] = [m for m in view["mirrors"] if m["route"] == route]
    assert len(found) == 1, view
    return found[0]


async def wait_view(
    session: aiohttp.ClientSession,
    gw: RunningGateway,
    probe: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = 5.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = await route_view(session, gw)
        if probe(view):
            return view
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {view}")
        await asyncio.sleep(0.02)


async def get(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with session.get(url, **kwargs) as response:
        return response.status, await response.json()


async def post(session: aiohttp.ClientSession, url: str, data: Any) -> tuple[int, Any]:
    async with session.post(url, data=data) as response:
        return response.status, await response.json()


# -- what the shadow gets ----------------------------------------------------------------------


async def test_every_request_reaches_the_shadow_as_the_filters_left_it(
    make_gateway: MakeGateway, recorder: MakeRecorder, session: aiohttp.ClientSession
) -> None:
    primary = await recorder("primary")
    shadow = await recorder("shadow")
    before = "\n              - StripPrefix=1\n              - AddRequestHeader=X-Added, yes"
    gw = await make_gateway(mirror_route(primary, f"Mirror={shadow.url}", before=before))
    for n in range(20):
        status, body = await get(session, f"{gw.url}/orders/{n}?q=v", headers={"X-Mirror": "no"})
        assert status == 200
        assert body["upstream"] == "primary"
    assert len(primary.seen) == 20
    await until(lambda: len(shadow.seen) == 20, "20 copies at the shadow")
    for n, (main, copy) in enumerate(zip(primary.seen, shadow.seen, strict=True)):
        assert (copy.method, copy.path, copy.query) == ("GET", f"/{n}", "q=v")
        assert copy.headers["X-Added"] == "yes"
        assert copy.headers.getall("X-Mirror") == ["true"]  # the client's own is not kept
        assert copy.headers["Host"] == f"127.0.0.1-shadow:{shadow.port}"
        assert copy.headers["X-Request-Id"] == main.headers["X-Request-Id"]
        assert main.headers["Host"] == f"127.0.0.1:{primary.port}"
        assert main.headers["X-Mirror"] == "no"
    view = await wait_view(session, gw, lambda v: v["requests"]["sent"] == 20, "20 sent")
    assert view["requests"] == {
        "sent": 20,
        "droppedInflight": 0,
        "skippedBody": 0,
        "failed": 0,
        "timeout": 0,
    }
    assert view["uri"] == shadow.url
    assert view["percent"] == 100.0
    assert view["compare"] is False
    assert "comparisons" not in view
    gw.gateway.metrics.flush()
    text = gw.gateway.metrics.render().decode()
    assert 'meshgate_mirror_requests_total{outcome="sent",route="orders"} 20.0' in text


async def test_a_preserved_host_gets_the_shadow_suffix(
    make_gateway: MakeGateway, recorder: MakeRecorder, session: aiohttp.ClientSession
) -> None:
    primary = await recorder("primary")
    shadow = await recorder("shadow")
    before = "\n              - PreserveHostHeader"
    gw = await make_gateway(mirror_route(primary, f"Mirror={shadow.url}", before=before))
    status, _ = await get(session, f"{gw.url}/orders/1", headers={"Host": "orders:8080"})
    assert status == 200
    await until(lambda: len(shadow.seen) == 1, "the copy")
    assert primary.seen[0].headers["Host"] == "orders:8080"
    assert shadow.seen[0].headers["Host"] == "orders-shadow:8080"


async def test_an_lb_mirror_reaches_an_instance_of_the_service(
    make_gateway: MakeGateway, recorder: MakeRecorder, session: aiohttp.ClientSession
) -> None:
    primary = await recorder("primary")
    shadow = await recorder("shadow")
    services = f"""
        services:
          orders-v2:
            - {{host: 127.0.0.1, port: {shadow.port}, id: v2-a}}
        """
    gw = await make_gateway(services + mirror_route(primary, "Mirror=lb://orders-v2, 100"))
    for _ in range(3):
        assert (await get(session, f"{gw.url}/orders/x"))[0] == 200
    await until(lambda: len(shadow.seen) == 3, "3 copies")
    assert {s.headers["Host"] for s in shadow.seen} == {f"127.0.0.1-shadow:{shadow.port}"}


async def start_seeded(config: Path, rng: random.Random) -> RunningGateway:
    """``start_gateway`` with the gateway's rng given: the mirror's share is drawn from it."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "management_port": 0,
        "config": str(config),
        "shutdown_timeout": 5,
    }
    found = Factories.builtin()
    gateway = Gateway(with_document_settings(load_settings(**values), found), found, rng=rng)
    gateway.load()
    await gateway.start()
    return RunningGateway(gateway)


async def test_half_of_the_requests_are_mirrored_at_50_percent(
    tmp_path: Path, recorder: MakeRecorder, session: aiohttp.ClientSession
) -> None:
    primary = await recorder("primary")
    shadow = await recorder("shadow")
    config = tmp_path / "routes.yml"
    config.write_text(textwrap.dedent(mirror_route(primary, f"Mirror={shadow.url}, 50")))
    gw = await start_seeded(config, random.Random(20261202))
    try:
        for _ in range(200):
            assert (await get(session, f"{gw.url}/orders/x"))[0] == 200
        view = await wait_view(
            session, gw, lambda v: v["requests"]["sent"] == len(shadow.seen), "copies counted"
        )
        await asyncio.sleep(0.2)  # no copy still on its way
        sent = len(shadow.seen)
        assert 70 <= sent <= 130, sent  # 50 % of 200, more than 4 standard deviations wide
        assert view["requests"]["sent"] == sent
        assert len(primary.seen) == 200
    finally:
        await gw.gateway.stop()


async def test_zero_percent_mirrors_nothing(
    make_gateway: MakeGateway, recorder: MakeRecorder, session: aiohttp.ClientSession
) -> None:
    primary = await recorder("primary")
    shadow = await recorder("shadow")
    gw = await make_gateway(mirror_route(primary, f"Mirror={shadow.url}, 0"))
    for _ in range(10):
        assert (await get(session, f"{gw.url}/orders/x"))[0] == 200
    await asyncio.sleep(0.2)
    assert shadow.seen == []
    assert (await route_view(session, gw))["requests"]["sent"] == 0


# -- the client never waits ------------------------------------------------------------------------


async def test_a_slow_shadow_does_not_slow_the_main_response(
    make_gateway: MakeGateway, recorder: MakeRecorder, session: aiohttp.ClientSession
) -> None:
    primary = await recorder("primary")
    shadow = await recorder("shadow", delay=2.0)
    gw = await make_gateway(mirror_route(primary, f"Mirror={shadow.url}"))
    started = time.monotonic()
    for _ in range(3):
        status, body = await get(session, f"{gw.url}/orders/x")
        assert (status, body["upstream"]) == (200, "primary")
    assert time.monotonic() - started < 1.0  # three copies are each held for 2 s
    await until(lambda: len(shadow.seen) == 3, "the copies, still sent")
    view = await wait_view(session, gw, lambda v: v["requests"]["sent"] == 3, "3 sent", 4.0)
    assert view["requests"]["timeout"] == 0


async def test_a_dead_shadow_never_changes_the_main_response(
    make_gateway: MakeGateway, recorder: MakeRecorder, session: aiohttp.ClientSession
) -> None:
    primary = await recorder("primary")
    dead = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    gw = await make_gateway(mirror_route(primary, f"Mirror={dead}"))
    payload = os.urandom(20_000)
    for _ in range(5):
        status, body = await get(session, f"{gw.url}/orders/x")
        assert (status, body["upstream"]) == (200, "primary")
        status, body = await post(session, f"{gw.url}/orders/x", payload)
        assert (status, body["sha256"]) == (200, hashlib.sha256(payload).hexdigest())
    view = await wait_view(session, gw, lambda v: v["requests"]["failed"] == 10, "10 failed")
    assert view["requests"]["sent"] == 0


async def test_a_mirror_that_outlives_its_timeout_is_counted(
    make_gateway: MakeGateway, recorder: MakeRecorder, session: aiohttp.ClientSession
) -> None:
    primary = await recorder("primary")
    shadow = await recorder("shadow", delay=1.0)
    gw = await make_gateway(mirror_route(primary, f"Mirror={shadow.url}"), mirror_timeout="300ms")
    assert (await get(session, f"{gw.url}/orders/x"))[0] == 200
    view = await wait_view(session, gw, lambda v: v["requests"]["timeout"] == 1, "a timeout")
    assert view["requests"]["sent"] == 0
    assert gw.gateway.mirrors.inflight == 0


async def test_copies_beyond_the_inflight_bound_are_dropped(
    make_gateway: MakeGateway, recorder: MakeRecorder, session: aiohttp.ClientSession
) -> None:
    primary = await recorder("primary")
    shadow = await recorder("shadow", delay=1.5)
    gw = await make_gateway(mirror_route(primary, f"Mirror={shadow.url}"), mirror_max_inflight=2)
    for _ in range(6):  # all within the first copies' 1.5 s
        assert (await get(session, f"{gw.url}/orders/x"))[0] == 200
    view = await route_view(session, gw)
    assert view["requests"]["droppedInflight"] == 4
    view = await wait_view(session, gw, lambda v: v["requests"]["sent"] == 2, "2 sent", 4.0)
    assert len(shadow.seen) == 2
    assert view["requests"]["droppedInflight"] == 4


# -- bodies ------------------------------------------------------------------------------------


async def chunks_of(data: bytes, size: int = 16_384) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
        await asyncio.sleep(0)


async def test_a_post_body_arrives_intact_at_both(
    make_gateway: MakeGateway, recorder: MakeRecorder, session: aiohttp.ClientSession
) -> None:
    primary = await recorder("primary")
    shadow = await recorder("shadow")
    gw = await make_gateway(mirror_route(primary, f"Mirror={shadow.url}"))
    sized = os.urandom(300_000)
    chunked = os.urandom(250_000)
    status, body = await post(session, f"{gw.url}/orders/sized", sized)
    assert (status, body["sha256"]) == (200, hashlib.sha256(sized).hexdigest())
    status, body = await post(session, f"{gw.url}/orders/chunked", chunks_of(chunked))
    assert (status, body["sha256"]) == (200, hashlib.sha256(chunked).hexdigest())
    await until(lambda: len(shadow.seen) == 2, "both copies")
    by_path = {s.path: s for s in shadow.seen}
    assert by_path["/orders/sized"].sha256 == hashlib.sha256(sized).hexdigest()
    assert by_path["/orders/sized"].headers["Content-Length"] == "300000"
    assert by_path["/orders/chunked"].sha256 == hashlib.sha256(chunked).hexdigest()
    assert by_path["/orders/chunked"].headers["Transfer-Encoding"] == "chunked"
    assert [s.method for s in shadow.seen] == ["POST", "POST"]


async def test_bodies_over_the_limit_are_not_mirrored(
    make_gateway: MakeGateway, recorder: MakeRecorder, session: aiohttp.ClientSession
) -> None:
    primary = await recorder("primary")
    shadow = await recorder("shadow")
    gw = await make_gateway(mirror_route(primary, f"Mirror={shadow.url}"), mirror_max_body=1000)
    small, large = os.urandom(1000), os.urandom(5000)
    for payload in (large, chunks_of(large, 700), small):
        status, _ = await post(session, f"{gw.url}/orders/x", payload)
        assert status == 200
    assert [s.length for s in primary.seen] == [5000, 5000, 1000]  # the primary gets them all
    assert {s.sha256 for s in primary.seen[:2]} == {hashlib.sha256(large).hexdigest()}
    view = await wait_view(session, gw, lambda v: v["requests"]["sent"] == 1, "the small one")
    assert view["requests"]["skippedBody"] == 2
    assert [s.sha256 for s in shadow.seen] == [hashlib.sha256(small).hexdigest()]
    gw.gateway.metrics.flush()
    text = gw.gateway.metrics.render().decode()
    assert 'meshgate_mirror_requests_total{outcome="skipped_body",route="orders"} 2.0' in text


# -- shadow comparison ---------------------------------------------------------------------------


def versioned(side: str) -> Answer:
    """The same service in two versions: the shadow differs where the path says so."""

    async def answer(request: web.Request, body: bytes) -> web.StreamResponse:
        shadow = side == "shadow"
        path = request.path
        status = 500 if shadow and path == "/orders/status" else 200
        version = "2" if shadow and path == "/orders/header" else "1"
        data: dict[str, Any] = {
            "id": 7,
            "name": "y" if shadow and path == "/orders/field" else "x",
            "timestamp": f"{side}-{time.monotonic()}",
            "items": [{"id": f"{side}-{n}", "qty": n} for n in range(3)],
        }
        headers = {"X-Version": version, "X-Served-By": side}
        return web.json_response(data, status=status, headers=headers)

    return answer


COMPARED = """
              - name: Mirror
                args:
                  uri: {uri}
                  compare: true
                  ignore-headers: [X-Served-By]
                  ignore-json-paths: ["$.timestamp", "$.items[*].id"]"""


async def test_comparison_reports_exactly_the_differences(
    make_gateway: MakeGateway, recorder: MakeRecorder, session: aiohttp.ClientSession
) -> None:
    primary = await recorder("primary", answer=versioned("primary"))
    shadow = await recorder("shadow", answer=versioned("shadow"))
    config = f"""
        routes:
          - id: orders
            uri: {primary.url}
            predicates: [Path=/orders/**]
            filters:{COMPARED.format(uri=shadow.url)}
        """
    gw = await make_gateway(config)
    paths = ["same", "status", "header", "field", "same"]
    for n, name in enumerate(paths, start=1):
        status, _ = await get(session, f"{gw.url}/orders/{name}")
        assert status == 200  # the client always gets the primary's answer

        def done(view: dict[str, Any], n: int = n) -> bool:
            return bool(view["comparisons"]["compared"] == n)

        await wait_view(session, gw, done, f"comparison {n}")
    view = await route_view(session, gw)
    assert view["comparisons"] == {"compared": 5, "equal": 2, "differing": 3, "notComparable": 0}
    assert view["notComparable"] == {}
    assert view["ignoreHeaders"] == ["x-served-by"]
    assert view["ignoreJsonPaths"] == ["$.timestamp", "$.items[*].id"]
    found = [{k: v for k, v in d.items() if k != "time"} for d in view["differences"]]
    assert found == [
        {"method": "GET", "path": "/orders/status", "status": {"primary": 200, "shadow": 500}},
        {"method": "GET", "path": "/orders/header", "headers": ["x-version"]},
        {"method": "GET", "path": "/orders/field", "body": {"jsonPath": "$.name"}},
    ]
    gw.gateway.metrics.flush()
    text = gw.gateway.metrics.render().decode()
    assert 'meshgate_mirror_comparisons_total{result="equal",route="orders"} 2.0' in text
    assert 'meshgate_mirror_comparisons_total{result="differing",route="orders"} 3.0' in text


async def test_an_identical_shadow_compares_equal_on_every_request(
    make_gateway: MakeGateway, recorder: MakeRecorder, session: aiohttp.ClientSession
) -> None:
    async def same(request: web.Request, body: bytes) -> web.StreamResponse:
        if request.path == "/orders/big":  # streamed, chunked, 200 KiB
            response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for n in range(50):
                await response.write(bytes([n]) * 4096)
            await response.write_eof()
            return response
        return web.json_response({"echo": hashlib.sha256(body).hexdigest(), "path": request.path})

    primary = await recorder("primary", answer=same)
    shadow = await recorder("shadow", answer=same)
    mirror = "{name: Mirror, args: {uri: '" + shadow.url + "', compare: true}}"
    gw = await make_gateway(mirror_route(primary, mirror))
    for n in range(10):
        assert (await get(session, f"{gw.url}/orders/{n}"))[0] == 200
        assert (await post(session, f"{gw.url}/orders/{n}", os.urandom(3000)))[0] == 200
    async with session.get(f"{gw.url}/orders/big") as response:
        assert len(await response.read()) == 50 * 4096
    view = await wait_view(
        session, gw, lambda v: v["comparisons"]["compared"] == 21, "21 comparisons"
    )
    assert view["comparisons"] == {"compared": 21, "equal": 21, "differing": 0, "notComparable": 0}
    assert view["differences"] == []


async def test_a_field_that_differs_only_where_ignored_is_equal(
    make_gateway: MakeGateway, recorder: MakeRecorder, session: aiohttp.ClientSession
) -> None:
    primary = await recorder("primary", answer=versioned("primary"))
    shadow = await recorder("shadow", answer=versioned("shadow"))
    config = f"""
        routes:
          - id: orders
            uri: {primary.url}
            predicates: [Path=/orders/**]
            filters:{COMPARED.format(uri=shadow.url)}
          - id: strict
            uri: {primary.url}
            predicates: [Path=/strict/**]
            filters:
              - SetPath=/orders/same
              - name: Mirror
                args: {{uri: "{shadow.url}", compare: true}}
        """
    gw = await make_gateway(config)
    assert (await get(session, f"{gw.url}/orders/same"))[0] == 200
    assert (await get(session, f"{gw.url}/strict/x"))[0] == 200

    async def both_done() -> dict[str, Any]:
        deadline = time.monotonic() + 5
        while True:
            view = {m["route"]: m for m in (await mirrors_view(session, gw))["mirrors"]}
            if all(v["comparisons"]["compared"] == 1 for v in view.values()):
                return view
            assert time.monotonic() < deadline, view
            await asyncio.sleep(0.02)

    view = await both_done()
    assert view["orders"]["comparisons"]["equal"] == 1  # timestamp, item ids, X-Served-By
    strict = view["strict"]
    assert strict["comparisons"]["differing"] == 1  # the same answers, nothing ignored
    (difference,) = strict["differences"]
    assert difference["headers"] == ["x-served-by"]
    assert difference["body"] == {"jsonPath": "$.timestamp"}
    assert difference["path"] == "/orders/same"  # the path as the filters left it


async def test_a_shadow_that_cannot_answer_is_not_comparable(
    make_gateway: MakeGateway, recorder: MakeRecorder, session: aiohttp.ClientSession
) -> None:
    primary = await recorder("primary", answer=versioned("primary"))
    dead = f"http://127.0.0.1:{free_port()}"
    gw = await make_gateway(
        mirror_route(primary, "{name: Mirror, args: {uri: '" + dead + "', compare: true}}")
    )
    for _ in range(3):
        assert (await get(session, f"{gw.url}/orders/same"))[0] == 200
    view = await wait_view(
        session, gw, lambda v: v["comparisons"]["notComparable"] == 3, "3 not comparable"
    )
    assert view["notComparable"] == {"shadow_failed": 3}
    assert view["comparisons"]["compared"] == 0
    assert view["requests"]["failed"] == 3


# -- configuration and lifecycle ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("mirror", "expected"),
    [
        ("Mirror=http://s:81, 101", "argument 'percent': must be between 0 and 100"),
        ("Mirror=http://s:81, -1", "argument 'percent': must be between 0 and 100"),
        ("Mirror=ftp://s", "argument 'uri': 'ftp://s': the scheme must be http, https or lb"),
        ("Mirror=http://s/path", "argument 'uri': 'http://s/path': a mirror URI has no path"),
        (
            "{name: Mirror, args: {uri: 'http://s', compare: true, ignore-json-paths: ['$..a']}}",
            "argument 'ignore-json-paths': '$..a': recursive descent (..) is not supported",
        ),
    ],
)
async def test_bad_arguments_stop_the_gateway_with_a_located_error(
    tmp_path: Path, mirror: str, expected: str
) -> None:
    config = tmp_path / "routes.yml"
    config.write_text(
        textwrap.dedent(
            f"""
            routes:
              - id: orders
                uri: http://127.0.0.1:1
                filters:
                  - {mirror}
            """
        )
    )
    found = Factories.builtin()
    gateway = Gateway(load_settings(config=str(config), port=0, management_port=0), found)
    with pytest.raises(ConfigError) as caught:
        gateway.load()
    assert f"routes.yml: routes[0] (orders) filters[0] (Mirror): {expected}" in str(caught.value)


async def test_stopping_the_gateway_cancels_copies_in_flight(
    make_gateway: MakeGateway, recorder: MakeRecorder, session: aiohttp.ClientSession
) -> None:
    primary = await recorder("primary")
    shadow = await recorder("shadow", delay=3.0)
    gw = await make_gateway(mirror_route(primary, f"Mirror={shadow.url}"))
    for _ in range(3):
        assert (await get(session, f"{gw.url}/orders/x"))[0] == 200
    await until(lambda: len(shadow.seen) == 3, "the copies at the shadow")
    assert gw.gateway.mirrors.inflight == 3
    started = time.monotonic()
    await gw.gateway.stop()
    assert time.monotonic() - started < 2.5  # the copies were cancelled, not waited for
    assert gw.gateway.mirrors.inflight == 0


async def test_retry_inside_mirror_makes_one_copy_compared_with_the_final_answer(
    make_gateway: MakeGateway, recorder: MakeRecorder, session: aiohttp.ClientSession
) -> None:
    calls: list[int] = []

    async def flaky(request: web.Request, body: bytes) -> web.StreamResponse:
        calls.append(1)
        if len(calls) < 3:
            return web.json_response({"busy": True}, status=503)
        return web.json_response({"ok": True})

    async def steady(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.json_response({"ok": True})

    primary = await recorder("primary", answer=flaky)
    shadow = await recorder("shadow", answer=steady)
    config = f"""
        routes:
          - id: orders
            uri: {primary.url}
            predicates: [Path=/orders/**]
            filters:
              - name: Mirror
                args: {{uri: "{shadow.url}", compare: true}}
              - Retry=3
        """
    gw = await make_gateway(config)
    status, body = await get(session, f"{gw.url}/orders/x")
    assert (status, body) == (200, {"ok": True})
    assert len(primary.seen) == 3
    view = await wait_view(session, gw, lambda v: v["comparisons"]["compared"] == 1, "compared")
    assert view["comparisons"]["equal"] == 1  # the answer the client got, not a retried 503
    assert len(shadow.seen) == 1
