"""``MeshTransport``: ``httpx.AsyncClient`` through ``MeshClient`` against real servers on
127.0.0.1: service names balanced over their instances, bodies both ways (streamed or whole),
retries, repeated headers, trace and lane context, direct hosts, the error mapping, and the
call's slots held exactly as long as its response is open."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import random
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web

from discovery.instance import ServiceInstance
from discovery.mesh import CallContext, MeshClient, RetrySpec, ServicePolicy, call_context
from discovery.mesh.httpx_transport import MeshCallRefused, MeshDeadlineExceeded, MeshTransport
from discovery.static import StaticRegistry
from resilience.balancer.factory import BalancerSpec
from resilience.breaker import BreakerPolicy, CircuitOpen
from resilience.errors import DeadlineExceeded, NoInstanceAvailable, ServiceOverloaded
from resilience.lanes import NoLaneInstance
from tests.support.chaos import ChaosUpstream
from tests.support.ports import free_port
from tests.support.upstream import Upstream, serve

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
PAYLOAD = b"compressible " * 1000


def member(
    upstream: Upstream | ChaosUpstream, service: str = "billing", **meta: str
) -> ServiceInstance:
    return ServiceInstance(service, upstream.name, "127.0.0.1", upstream.port, metadata=meta)


def refusing(name: str = "gone") -> ServiceInstance:
    """An instance whose port nothing listens on: every connection to it is refused."""
    return ServiceInstance("billing", name, "127.0.0.1", free_port())


@asynccontextmanager
async def through(
    registry: StaticRegistry, **options: Any
) -> AsyncIterator[tuple[MeshClient, httpx.AsyncClient]]:
    async with (
        MeshClient(registry, rng=random.Random(5), **options) as mesh,
        httpx.AsyncClient(transport=MeshTransport(mesh)) as client,
    ):
        yield mesh, client


def received(response: httpx.Response) -> list[tuple[str, str]]:
    """The request headers the echo upstream reported, in order, repeated names kept."""
    return [(name.lower(), value) for name, value in response.json()["headers"]]


def values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for n, v in headers if n == name]


@pytest.fixture
async def quirks() -> AsyncIterator[Upstream]:
    """A server for what the echo upstream does not do: repeated response headers, a
    redirect, a gzip body, a head that never comes, a body that stops after its first chunk."""

    async def multi(request: web.Request) -> web.Response:
        response = web.Response(text="multi")
        response.headers.add("X-Multi", "1")
        response.headers.add("X-Multi", "2")
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        return response

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://billing/multi")

    async def gzipped(request: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(PAYLOAD), headers={"Content-Encoding": "gzip"})

    async def stall(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(text="late")

    async def hold(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"first")
        await asyncio.sleep(30)
        return response

    app = web.Application()
    app.router.add_get("/multi", multi)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/stall", stall)
    app.router.add_get("/hold", hold)
    runner, port = await serve(app, shutdown_timeout=0.1)
    yield Upstream("q", port, runner)
    await runner.cleanup()


# -- routing ------------------------------------------------------------------------------------


async def test_a_service_name_is_balanced_over_its_instances(
    upstream: Upstream, upstream_b: Upstream
) -> None:
    registry = StaticRegistry({"billing": [member(upstream), member(upstream_b)]})
    async with through(registry) as (_, client):
        answers = [await client.get(f"http://billing/invoices/{i}?x=1") for i in range(4)]
        assert [r.status_code for r in answers] == [200] * 4
        assert sorted(r.json()["upstream"] for r in answers) == ["a", "a", "b", "b"]
        first = answers[0]
        assert (first.json()["path"], first.json()["query"]) == ("/invoices/0", "x=1")
        # httpx's Host (the service name) gave way to the instance's address.
        instance = upstream if first.json()["upstream"] == "a" else upstream_b
        assert values(received(first), "host") == [f"127.0.0.1:{instance.port}"]
        assert first.headers["x-upstream"] == first.json()["upstream"]
        assert (first.http_version, first.reason_phrase) == ("HTTP/1.1", "OK")
        lb = await client.get("lb://billing/lb")
        assert (lb.status_code, lb.json()["path"]) == (200, "/lb")
        # A Host set on purpose (one that is not the URL's) is sent.
        named = await client.get("http://billing/x", headers={"Host": "billing.internal"})
        assert values(received(named), "host") == ["billing.internal"]


async def test_other_hosts_go_direct_with_a_traceparent(upstream: Upstream) -> None:
    async with through(StaticRegistry({"billing": []})) as (mesh, client):
        assert mesh.service_of(f"http://127.0.0.1:{upstream.port}/") is None
        response = await client.get(f"{upstream.url}/direct")
        assert (response.status_code, response.json()["upstream"]) == (200, "a")
        sent = received(response)
        assert values(sent, "host") == [f"127.0.0.1:{upstream.port}"]
        (traceparent,) = values(sent, "traceparent")
        assert traceparent.startswith("00-")
        # A host no registry knows is looked up in DNS: nothing answers for .invalid.
        with pytest.raises(httpx.ConnectError) as caught:
            await client.get("http://nowhere.invalid/x")
        assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorDNSError)


# -- bodies -------------------------------------------------------------------------------------


async def test_a_streamed_response_body_is_read_in_chunks(upstream: Upstream) -> None:
    size = 1024 * 1024
    async with (
        through(StaticRegistry({"billing": [member(upstream)]})) as (_, client),
        client.stream("GET", f"http://billing/bytes/{size}") as response,
    ):
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        chunks = [chunk async for chunk in response.aiter_raw()]
        assert len(chunks) > 1
        assert b"".join(chunks) == b"x" * size


async def test_request_bodies_arrive_intact_and_framed_once(upstream: Upstream) -> None:
    chaos = await ChaosUpstream("c").start()
    registry = StaticRegistry({"billing": [member(upstream)], "ledger": [member(chaos, "ledger")]})
    big = random.Random(1).randbytes(3 * 1024 * 1024)  # beyond what a retry would keep

    async def produced() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 100_000):
            yield big[start : start + 100_000]

    try:
        async with through(registry) as (_, client):
            # Whole bodies: in memory, and the integrity of every byte.
            posted = await client.post("http://ledger/pay", content=big)
            assert posted.json()["length"] == len(big)
            streamed = await client.post("http://ledger/pay", content=produced())
            assert streamed.json()["length"] == len(big)
            form = await client.post("http://ledger/pay", files={"f": ("f.bin", big[:5000])})
            assert form.status_code == 200
            digest = hashlib.sha256(big).hexdigest()
            assert chaos.bodies[:2] == [(len(big), digest), (len(big), digest)]

            # Framing as sent: aiohttp's, once; no Content-Type httpx did not set.
            small = await client.post("http://billing/x", content=b"abc")
            sent = received(small)
            assert small.json()["body"] == "abc"
            assert values(sent, "content-length") == ["3"]
            assert values(sent, "transfer-encoding") == values(sent, "content-type") == []
            as_json = await client.post("http://billing/x", json={"n": 1})
            assert as_json.json()["body"] == '{"n":1}'
            assert values(received(as_json), "content-type") == ["application/json"]

            async def tiny() -> AsyncIterator[bytes]:
                yield b"ab"
                yield b"cd"

            chunked = await client.post("http://billing/x", content=tiny())
            sent = received(chunked)
            assert chunked.json()["body"] == "abcd"
            assert values(sent, "transfer-encoding") == ["chunked"]
            assert values(sent, "content-length") == []
            sized = await client.post(
                "http://billing/x", content=tiny(), headers={"Content-Length": "4"}
            )
            sent = received(sized)
            assert sized.json()["body"] == "abcd"
            assert values(sent, "content-length") == ["4"]
            assert values(sent, "transfer-encoding") == []
            got = received(await client.get("http://billing/x"))
            assert values(got, "content-length") == values(got, "transfer-encoding") == []
    finally:
        await chaos.stop()


# -- retries ------------------------------------------------------------------------------------


async def test_an_idempotent_get_is_retried_on_the_next_instance(upstream: Upstream) -> None:
    registry = StaticRegistry({"billing": [refusing(), member(upstream)]})
    async with through(registry) as (mesh, client):
        answers = [await client.get(f"http://billing/r/{i}") for i in range(4)]
        assert [(r.status_code, r.json()["upstream"]) for r in answers] == [(200, "a")] * 4
        assert mesh.runtimes.get("billing").budget.stats()["retries"] >= 1


async def test_a_streamed_body_is_sent_once_a_whole_one_is_retried(upstream: Upstream) -> None:
    policy = ServicePolicy(retry=RetrySpec(methods=frozenset({"GET", "POST"})))
    registry = StaticRegistry({"billing": [refusing(), member(upstream)]})

    async def body() -> AsyncIterator[bytes]:
        yield b"once"

    async with through(registry, policies={"billing": policy}) as (_, client):
        outcomes: list[str] = []
        for _ in range(4):  # round robin: some of these start at the refusing instance
            try:
                response = await client.post("http://billing/s", content=body())
                outcomes.append(response.json()["body"])
            except httpx.ConnectError:
                outcomes.append("refused")
        assert "refused" in outcomes and "once" in outcomes
        whole = [await client.post("http://billing/w", content=b"whole") for _ in range(4)]
        assert [r.json()["body"] for r in whole] == ["whole"] * 4


# -- headers and context ------------------------------------------------------------------------


async def test_repeated_headers_survive_both_ways(upstream: Upstream, quirks: Upstream) -> None:
    registry = StaticRegistry({"billing": [member(upstream)], "quirks": [member(quirks, "quirks")]})
    async with through(registry) as (_, client):
        echoed = await client.get("http://billing/h", headers=[("X-Multi", "1"), ("X-Multi", "2")])
        assert values(received(echoed), "x-multi") == ["1", "2"]
        response = await client.get("http://quirks/multi")
        assert response.headers.get_list("x-multi") == ["1", "2"]
        assert len(response.headers.get_list("set-cookie")) == 2
        assert dict(response.cookies) == {"a": "1", "b": "2"}


async def test_trace_and_lane_of_the_call_context_reach_the_instance(
    upstream: Upstream, upstream_b: Upstream
) -> None:
    registry = StaticRegistry({"billing": [member(upstream), member(upstream_b, lane="canary")]})
    async with through(registry) as (_, client):
        plain = [await client.get("http://billing/p") for _ in range(3)]
        assert [r.json()["upstream"] for r in plain] == ["a"] * 3  # never the canary
        inbound = CallContext(trace=(int(TRACE, 16), int(PARENT, 16), True), lane="canary")
        with call_context(inbound):
            laned = await client.get("http://billing/l", headers={"baggage": "user=42"})
        assert laned.json()["upstream"] == "b"
        sent = received(laned)
        (traceparent,) = values(sent, "traceparent")
        _, trace_id, span_id, flags = traceparent.split("-")
        assert (trace_id, flags) == (TRACE, "01")
        assert span_id != PARENT
        assert values(sent, "baggage") == ["user=42,lane=canary"]


async def test_redirects_and_decompression_are_left_to_httpx(quirks: Upstream) -> None:
    async with through(StaticRegistry({"billing": [member(quirks)]})) as (_, client):
        redirected = await client.get("http://billing/redirect")
        assert redirected.status_code == 302
        assert redirected.headers["location"] == "http://billing/multi"
        followed = await client.get("http://billing/redirect", follow_redirects=True)
        assert (followed.status_code, followed.text) == (200, "multi")
        zipped = await client.get("http://billing/gzip")
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.content == PAYLOAD  # decoded once, by httpx


# -- errors -------------------------------------------------------------------------------------


@contextmanager
def full_backlog() -> Iterator[int]:
    """A port whose listen queue is full (nothing accepts): a connect to it hangs, unanswered."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                with suppress(BlockingIOError):  # a non-blocking connect is under way
                    filler.connect(("127.0.0.1", port))
            yield port
        finally:
            for filler in fillers:
                filler.close()


async def test_connection_failures_and_timeouts_map_to_httpx_errors(quirks: Upstream) -> None:
    once = RetrySpec(retries=0)
    policies = {
        "127.0.0.1": ServicePolicy(retry=once, connect_timeout=0.3),
        "billing": ServicePolicy(retry=once, per_try_timeout=0.3),
        "slow": ServicePolicy(retry=once, per_try_timeout=5.0, timeout=0.3),
    }
    registry = StaticRegistry({"billing": [member(quirks)], "slow": [member(quirks, "slow")]})
    async with through(registry, policies=policies) as (_, client):
        with pytest.raises(httpx.ConnectError) as refused:
            await client.get(f"http://127.0.0.1:{free_port()}/x")
        assert isinstance(refused.value.__cause__, aiohttp.ClientConnectorError)
        assert refused.value.request.url.path == "/x"

        with full_backlog() as port, pytest.raises(httpx.ConnectTimeout) as connect:
            await asyncio.wait_for(client.get(f"http://127.0.0.1:{port}/x"), 5)
        assert isinstance(connect.value.__cause__, aiohttp.ConnectionTimeoutError)

        with pytest.raises(httpx.ReadTimeout) as head:
            await client.get("http://billing/stall")
        assert isinstance(head.value.__cause__, aiohttp.SocketTimeoutError)

        # The head came; the body went silent: the timeout comes out of the body's read.
        async with client.stream("GET", "http://billing/hold") as response:
            assert response.status_code == 200
            with pytest.raises(httpx.ReadTimeout):
                await response.aread()

        with pytest.raises(MeshDeadlineExceeded) as deadline:
            await client.get("http://slow/stall")
        assert isinstance(deadline.value, httpx.TimeoutException)
        assert isinstance(deadline.value.__cause__, DeadlineExceeded)

        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("ftp://billing/x")


async def test_server_disconnects_map_to_remote_protocol_error() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()  # the request arrived, no response ever will

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    chaos = await ChaosUpstream("c", mode="reset").start()
    registry = StaticRegistry({"ledger": [member(chaos, "ledger")]})
    try:
        async with through(registry) as (_, client):
            with pytest.raises(httpx.RemoteProtocolError) as before_head:
                await client.get(f"http://127.0.0.1:{port}/x")
            assert isinstance(before_head.value.__cause__, aiohttp.ServerDisconnectedError)
            # The head and a part of the body came, then the connection dropped.
            async with client.stream("GET", "http://ledger/x") as response:
                assert response.status_code == 200
                with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)) as cut:
                    await response.aread()
            assert isinstance(cut.value.__cause__, aiohttp.ClientError)
    finally:
        server.close()
        await server.wait_closed()
        await chaos.stop()


async def test_the_mesh_refusals_are_transport_errors_with_the_cause(upstream: Upstream) -> None:
    policies = {
        "billing": ServicePolicy(breaker=BreakerPolicy(fail_max=2, reset_timeout=60.0)),
        "payments": ServicePolicy(),  # a service by policy, with no instance
        "strict": ServicePolicy(strict_lanes=True),
    }
    registry = StaticRegistry(
        {"billing": [member(upstream)], "strict": [member(upstream, "strict")]}
    )
    async with through(registry, policies=policies) as (_, client):
        # 5xx answers come back as responses, and count against the breaker.
        assert [(await client.get("http://billing/status/503")).status_code for _ in range(2)] == [
            503,
            503,
        ]
        with pytest.raises(MeshCallRefused) as opened:
            await client.get("http://billing/status/200")
        assert isinstance(opened.value, httpx.TransportError)
        assert isinstance(opened.value.__cause__, CircuitOpen)
        assert opened.value.error is opened.value.__cause__
        assert opened.value.retry_after is not None and opened.value.retry_after > 0

        with pytest.raises(MeshCallRefused) as none:
            await client.get("http://payments/x")
        assert isinstance(none.value.__cause__, NoInstanceAvailable)
        assert none.value.retry_after is None

        with call_context(CallContext(lane="canary")), pytest.raises(MeshCallRefused) as lane:
            await client.get("http://strict/x")
        assert isinstance(lane.value.__cause__, NoLaneInstance)


# -- slots and lifecycle ------------------------------------------------------------------------


async def test_closing_the_response_releases_the_calls_slots(quirks: Upstream) -> None:
    policy = ServicePolicy(max_concurrent=1, balancer=BalancerSpec(policy="least_request"))
    registry = StaticRegistry({"billing": [member(quirks)]})
    async with through(registry, policies={"billing": policy}) as (mesh, client):
        for _ in range(2):  # each read whole and closed by httpx: the slot comes back
            assert (await client.get("http://billing/multi")).status_code == 200
        runtime = mesh.runtimes.get("billing")
        bulkhead = runtime.bulkhead
        assert bulkhead is not None
        assert (bulkhead.active, runtime.active.count("q")) == (0, 0)

        async with client.stream("GET", "http://billing/hold") as held:
            assert await anext(held.aiter_raw()) == b"first"
            assert (bulkhead.active, runtime.active.count("q")) == (1, 1)
            with pytest.raises(MeshCallRefused) as shed:
                await client.get("http://billing/multi")
            assert isinstance(shed.value.__cause__, ServiceOverloaded)
            assert bulkhead.rejected == 1
        # Closed with its body unread: the slots are free again.
        assert (bulkhead.active, runtime.active.count("q")) == (0, 0)
        assert (await client.get("http://billing/multi")).status_code == 200


async def test_an_owned_mesh_lives_as_long_as_the_transport(upstream: Upstream) -> None:
    registry = StaticRegistry({"billing": [member(upstream)]})
    owned = MeshClient(registry)
    async with httpx.AsyncClient(transport=MeshTransport(owned, owns_client=True)) as client:
        assert (await client.get("http://billing/x")).json()["upstream"] == "a"
    with pytest.raises(RuntimeError, match="not started"):
        await owned.get("http://billing/x")

    async with MeshClient(registry) as shared:
        async with httpx.AsyncClient(transport=MeshTransport(shared)) as client:
            assert (await client.get("http://billing/x")).status_code == 200
        async with shared.get("http://billing/x") as still:  # not the transport's to close
            assert still.status == 200
