"""The demo mesh (``examples.mesh``, what ``make demo-mesh`` runs) as real processes against a
real Consul agent, with a real OTLP receiver: one trace from the gateway through orders to
billing with every parent link right; the canary lane carried in baggage to billing's canary
while unlaned traffic never reaches it; a billing instance killed mid-run without a failed
call, then billing fully down and orders answering its own fallback once the breaker opens;
the legacy app (no mesh code) calling billing through its sidecar's outbound port as
``HTTP_PROXY`` and reached from the gateway through Consul and that sidecar.

One mesh for the module (its start-up is most of the cost); the test that kills billing runs
last."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from discovery.traceparent import parse_traceparent
from examples.mesh.cluster import MeshDemo, Ports
from tests.support.consul import ConsulAgent, consul_binary
from tests.support.otlp import OtlpReceiver, ReceivedSpan

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsulAgent]:
    """An agent of this module's own: the demo's services re-register themselves, which the
    shared agent's wipe between tests would fight."""
    try:
        binary = consul_binary(build=False)
    except RuntimeError as error:
        pytest.fail(f"no Consul binary: {error}", pytrace=False)
    with ConsulAgent(binary, log_dir=tmp_path_factory.mktemp("consul")) as consul:
        yield consul


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def receiver() -> AsyncIterator[OtlpReceiver]:
    started = await OtlpReceiver().start()
    yield started
    await started.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(
    agent: ConsulAgent, receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[MeshDemo]:
    logs: Path = tmp_path_factory.mktemp("demo-mesh")
    demo = MeshDemo(agent.http_addr, logs, receiver.traces_url, Ports.free())
    await asyncio.to_thread(demo.start)
    yield demo
    await asyncio.to_thread(demo.stop)


@pytest_asyncio.fixture(loop_scope="module")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:
        yield client


async def get(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with session.get(url, headers=headers or {}) as response:
        return response.status, await response.json()


def of_trace(spans: list[ReceivedSpan], trace_id: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.trace_id == trace_id]


async def test_one_trace_from_the_gateway_through_orders_to_billing(
    mesh: MeshDemo, receiver: OtlpReceiver, session: aiohttp.ClientSession
) -> None:
    status, body = await get(session, f"{mesh.gateway_url}/orders/7", {"traceparent": TRACEPARENT})
    assert status == 200, body
    assert body["invoice"]["invoice"] == "7"
    # What reached billing: the caller's trace, with orders' CLIENT span as its parent.
    reached = parse_traceparent(body["invoice"]["traceparent"])
    assert reached is not None and f"{reached[0]:032x}" == TRACE_ID

    def complete(spans: list[ReceivedSpan]) -> bool:
        found = {(s.service, s.kind) for s in of_trace(spans, TRACE_ID)}
        wanted = {("gateway", "SERVER"), ("gateway", "CLIENT"), ("orders", "SERVER")}
        return wanted | {("orders", "CLIENT"), ("billing", "SERVER")} <= found

    spans = of_trace(await receiver.wait_for(complete), TRACE_ID)

    def one(service: str, kind: str) -> ReceivedSpan:
        [span] = [s for s in spans if s.service == service and s.kind == kind]
        return span

    edge = one("gateway", "SERVER")
    assert edge.parent_span_id == "00f067aa0ba902b7"  # the client's span
    hop = one("gateway", "CLIENT")
    assert hop.parent_span_id == edge.span_id
    orders = one("orders", "SERVER")
    assert orders.parent_span_id == hop.span_id
    assert orders.attributes["http.route"] == "/orders/{id}"
    call = one("orders", "CLIENT")
    assert call.parent_span_id == orders.span_id
    assert call.attributes["gateway.service"] == "billing"
    assert call.attributes["http.response.status_code"] == 200
    billing = one("billing", "SERVER")
    assert billing.parent_span_id == call.span_id
    assert f"{reached[1]:016x}" == call.span_id
    assert all(s.status_code != "ERROR" for s in spans)


async def test_the_canary_lane_reaches_billing_canary_and_unlaned_traffic_never(
    mesh: MeshDemo, session: aiohttp.ClientSession
) -> None:
    url = f"{mesh.gateway_url}/orders/1"
    status, beta = await get(session, url, {"X-Beta": "true"})
    assert status == 200, beta
    assert beta["served_by"] == {"orders": "canary", "lane": "canary"}
    assert beta["invoice"]["billing"] == "canary"
    assert beta["invoice"]["baggage"] == ["lane=canary"]  # orders carried it on untouched
    served = set()
    for _ in range(30):
        # A client's own lane in baggage is not trusted at the edge: still stable traffic.
        status, body = await get(session, url, {"baggage": "lane=canary"})
        assert status == 200, body
        served.add((body["served_by"]["orders"], body["invoice"]["billing"]))
    assert served == {("stable", "stable-1"), ("stable", "stable-2")}


async def test_the_legacy_app_calls_billing_through_its_sidecar_as_http_proxy(
    mesh: MeshDemo, receiver: OtlpReceiver, session: aiohttp.ClientSession
) -> None:
    # Into the sidecar's proxy port with a lane and a trace, as another service would call it.
    headers = {"traceparent": TRACEPARENT.replace("0ba902b7", "0ba902b8"), "baggage": "lane=canary"}
    status, body = await get(session, f"{mesh.legacy_url}/invoice/3", headers)
    assert status == 200, body
    assert body["app"] == "legacy"
    invoice = body["invoice"]
    assert invoice["billing"] == "canary"  # the lane from the app's baggage, via the proxy
    assert invoice["baggage"] == ["lane=canary"]
    reached = parse_traceparent(invoice["traceparent"])
    assert reached is not None and f"{reached[0]:032x}" == TRACE_ID
    parent = f"{reached[1]:016x}"
    # Unlaned: only stable instances.
    seen = set()
    for _ in range(6):
        status, body = await get(session, f"{mesh.legacy_url}/invoice/4")
        assert status == 200, body
        seen.add(body["invoice"]["billing"])
    assert seen <= {"stable-1", "stable-2"} and seen

    # The outbound hop's spans are the sidecar's: its CLIENT span is billing's parent.
    def hop(spans: list[ReceivedSpan]) -> bool:
        return any(
            s.service == "billing" and s.parent_span_id == parent for s in of_trace(spans, TRACE_ID)
        )

    spans = of_trace(await receiver.wait_for(hop), TRACE_ID)
    [outbound] = [s for s in spans if s.span_id == parent]
    assert (outbound.service, outbound.kind) == ("legacy-sidecar", "CLIENT")


async def test_the_legacy_app_is_reached_from_the_gateway_through_consul(
    mesh: MeshDemo, session: aiohttp.ClientSession
) -> None:
    assert mesh.passing("legacy") == 1
    status, body = await get(session, f"{mesh.gateway_url}/legacy/whoami")
    assert status == 200, body
    assert body["app"] == "legacy"
    status, body = await get(session, f"{mesh.gateway_url}/legacy/invoice/5")
    assert status == 200, body
    assert body["invoice"]["billing"] in {"stable-1", "stable-2"}


async def test_a_billing_instance_killed_mid_run_then_billing_down(
    mesh: MeshDemo, session: aiohttp.ClientSession
) -> None:
    """Last in the module: it kills billing."""
    orders = mesh.orders_url("stable")
    failures: list[tuple[int, Any]] = []
    served: list[str] = []
    for number in range(100):
        if number == 30:
            await asyncio.to_thread(mesh.kill, "billing-stable-1")
        status, body = await get(session, f"{orders}/orders/{number}")
        if status != 200 or body.get("fallback"):
            failures.append((status, body))
        else:
            served.append(body["invoice"]["billing"])
    assert failures == []
    assert "stable-1" in served[:30]
    assert served[30:] == ["stable-2"] * 70  # retried elsewhere, then ejected and dropped

    for name in ("billing-stable-2", "billing-canary"):
        await asyncio.to_thread(mesh.kill, name)
    answers = []
    for number in range(10):
        status, body = await get(session, f"{orders}/orders/{number}")
        answers.append((status, body.get("fallback")))
        if body.get("fallback") == "breaker-open":
            break
    # Failed calls until the breaker opens (fail_max 3), or Consul dropped billing first.
    assert answers[-1] in {(200, "breaker-open"), (200, "no-instance")}, answers
    assert len(answers) <= 4, answers
    status, body = await get(session, f"{orders}/orders/99")
    assert status == 200 and body["fallback"] in {"breaker-open", "no-instance"}
    assert body["invoice"] is None and body["served_by"]["orders"] == "stable"
