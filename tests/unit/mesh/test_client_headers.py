"""What the mesh client's attempts send when no tracer records spans (OpenTelemetry's no-op
tracer, the usual case without an SDK): a new span id per attempt, retries included, in the
call's trace; the caller's own ``traceparent`` and ``tracestate`` kept on every attempt; the
caller's ``baggage`` merged with the lane. Real aiohttp servers on 127.0.0.1 answer."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from multidict import CIMultiDict

from discovery.instance import ServiceInstance
from discovery.mesh import CallContext, MeshClient, RetrySpec, ServicePolicy, call_context
from discovery.static import StaticRegistry
from discovery.traceparent import parse_traceparent
from tests.support.upstream import serve

TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT = 0x00F067AA0BA902B7


@dataclass
class Seen:
    port: int = 0
    headers: list[CIMultiDict[str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


@pytest.fixture
async def servers() -> AsyncIterator[list[Seen]]:
    """Two instances; the first request either of them gets is answered 503."""
    seen = [Seen(), Seen()]
    runners = []
    for one in seen:

        async def handle(request: web.Request, one: Seen = one) -> web.Response:
            first = not any(s.headers for s in seen)
            one.headers.append(CIMultiDict(request.headers))
            one.paths.append(request.path_qs)
            return web.Response(status=503 if first else 200, text="x")

        app = web.Application()
        app.router.add_get("/{tail:.*}", handle)
        runner, one.port = await serve(app)
        runners.append(runner)
    yield seen
    for runner in runners:
        await runner.cleanup()


def client(seen: list[Seen], **policy: object) -> MeshClient:
    instances = [
        ServiceInstance("billing", f"billing-{i}", "127.0.0.1", one.port)
        for i, one in enumerate(seen)
    ]
    policies = {"billing": ServicePolicy(**policy)} if policy else None  # type: ignore[arg-type]
    return MeshClient(
        StaticRegistry({"billing": instances}), policies=policies, rng=random.Random(3)
    )


def all_sent(seen: list[Seen]) -> list[CIMultiDict[str]]:
    return [headers for one in seen for headers in one.headers]


async def test_a_retried_call_sends_a_new_span_id_per_attempt_in_its_trace(
    servers: list[Seen],
) -> None:
    inbound = CallContext(trace=(TRACE, PARENT, True), tracestate="vendor=1", lane="canary")
    async with client(servers, retry=RetrySpec(retries=1, statuses=frozenset({503}))) as mesh:
        with call_context(inbound):
            async with mesh.get("http://billing/x", headers={"baggage": "tenant=t1"}) as resp:
                assert resp.status == 200
    first, second = all_sent(servers)
    assert all(len(one.headers) == 1 for one in servers)  # the retry went to the other one
    ids = []
    for headers in (first, second):
        parsed = parse_traceparent(headers["traceparent"])
        assert parsed is not None and parsed[0] == TRACE and parsed[2] is True
        ids.append(parsed[1])
        assert headers.getall("tracestate") == ["vendor=1"]
        assert headers.getall("baggage") == ["tenant=t1,lane=canary"]
    assert len({*ids, PARENT}) == 3


async def test_the_callers_own_trace_headers_are_kept_on_every_attempt(
    servers: list[Seen],
) -> None:
    own = {"traceparent": f"00-{TRACE:032x}-{0xABC:016x}-01", "tracestate": "mine=2"}
    inbound = CallContext(trace=(TRACE, PARENT, True), tracestate="vendor=1")
    async with client(servers, retry=RetrySpec(retries=1, statuses=frozenset({503}))) as mesh:
        with call_context(inbound):
            async with mesh.get("http://billing/x", headers=own) as resp:
                assert resp.status == 200
    sent = all_sent(servers)
    assert len(sent) == 2
    for headers in sent:
        assert headers.getall("traceparent") == [own["traceparent"]]
        assert headers.getall("tracestate") == ["mine=2"]
        assert "baggage" not in headers


async def test_without_any_context_each_call_starts_its_own_unsampled_trace(
    servers: list[Seen],
) -> None:
    async with client(servers) as mesh:
        for status in (503, 200, 200):
            async with mesh.get("http://billing/x") as resp:
                assert resp.status == status  # 5xx is not retried by default
    sent = all_sent(servers)
    assert len(sent) == 3
    parsed = [parse_traceparent(headers["traceparent"]) for headers in sent]
    assert all(p is not None and p[2] is False for p in parsed)
    assert len({p[0] for p in parsed if p is not None}) == 3
    assert all("tracestate" not in h and "baggage" not in h for h in sent)


async def test_an_instance_re_registered_elsewhere_and_every_path_get_their_own_target(
    servers: list[Seen],
) -> None:
    """Targets are reused only for the same instance and the same URL: an instance that
    comes back on another port (same id) is called there, and each path and query is sent."""
    first, second = servers
    registry = StaticRegistry(
        {"billing": [ServiceInstance("billing", "billing-0", "127.0.0.1", first.port)]}
    )
    async with MeshClient(registry, rng=random.Random(3)) as mesh:
        for url in ("http://billing/a", "http://billing/a", "http://billing/b?q=1"):
            async with mesh.get(url):
                pass
        registry.replace(
            {"billing": [ServiceInstance("billing", "billing-0", "127.0.0.1", second.port)]}
        )
        async with mesh.get("http://billing/b?q=1"):
            pass
    assert first.paths == ["/a", "/a", "/b?q=1"] and second.paths == ["/b?q=1"]
