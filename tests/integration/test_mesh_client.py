"""``discovery.mesh`` against real servers on 127.0.0.1 (and a real Consul agent): balancing
by service name, retries and ejection when an instance dies, the breaker, POST never repeated,
lanes and trace context carried from an inbound request, ``from_env`` and self-registration."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web

from discovery.consul.settings import ConsulSettings
from discovery.instance import ServiceInstance
from discovery.mesh import (
    MeshClient,
    RetrySpec,
    ServicePolicy,
    mesh_middleware,
    registration_ctx,
)
from discovery.static import StaticRegistry
from resilience.breaker import BreakerPolicy, CircuitOpen
from resilience.errors import NoInstanceAvailable
from resilience.lanes import NoLaneInstance
from resilience.outlier import OutlierPolicy
from resilience.runtime import RuntimeSettings
from tests.support.consul import ConsulAgent
from tests.support.upstream import serve

T = TypeVar("T")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@dataclass
class Instance:
    """An aiohttp instance that records what reached it and answers ``status``."""

    name: str
    status: int = 200
    port: int = 0
    runner: web.AppRunner | None = None
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    async def start(self) -> Instance:
        async def handle(request: web.Request) -> web.Response:
            await request.read()
            self.seen.append((request.method, request.path_qs, dict(request.headers)))
            return web.json_response(
                {"instance": self.name, "path": request.path_qs}, status=self.status
            )

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        self.runner, self.port = await serve(app, self.port)
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def member(self, service: str = "billing", **meta: str) -> ServiceInstance:
        return ServiceInstance(service, self.name, "127.0.0.1", self.port, metadata=meta)


class Dropper:
    """A raw TCP server that reads a request head and closes the connection unanswered:
    every attempt to it fails after its bytes went out. Counts what reached it."""

    def __init__(self) -> None:
        self.requests = 0
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> Dropper:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await reader.readuntil(b"\r\n\r\n")
                self.requests += 1
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            writer.close()

        self._server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def member(self, name: str) -> ServiceInstance:
        return ServiceInstance("billing", name, "127.0.0.1", self.port)


@pytest.fixture
async def two() -> AsyncIterator[tuple[Instance, Instance]]:
    a, b = await Instance("a").start(), await Instance("b").start()
    yield a, b
    await a.stop()
    await b.stop()


def client(registry: StaticRegistry, **options: Any) -> MeshClient:
    return MeshClient(registry, rng=random.Random(5), **options)


async def fetch(mesh: MeshClient, url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    async with mesh.get(url, **kwargs) as resp:
        return resp.status, await resp.json()


async def test_service_name_round_robins_lb_too_and_other_hosts_go_direct(
    two: tuple[Instance, Instance],
) -> None:
    a, b = two
    async with client(StaticRegistry({"billing": [a.member(), b.member()]})) as mesh:
        answers = [(await fetch(mesh, f"http://billing/invoices/{i}?x=1"))[1] for i in range(6)]
        assert [r["instance"] for r in answers].count("a") == 3
        assert {r["instance"] for r in answers} == {"a", "b"}
        assert answers[0]["path"] == "/invoices/0?x=1"
        lb = [(await fetch(mesh, "lb://Billing/lb"))[1]["instance"] for _ in range(2)]
        assert sorted(lb) == ["a", "b"]
        # host:port is an address, never a service; it still carries a traceparent.
        status, direct = await fetch(mesh, f"http://127.0.0.1:{a.port}/direct")
        assert (status, direct["instance"]) == (200, "a")
        assert a.seen[-1][2]["traceparent"].startswith("00-")
        with pytest.raises(NoInstanceAvailable, match="'payments'"):
            await fetch(mesh, "lb://payments/x")


async def test_an_instance_killed_mid_run_fails_no_call(two: tuple[Instance, Instance]) -> None:
    a, b = two
    mesh = client(
        StaticRegistry({"billing": [a.member(), b.member()]}),
        runtime=RuntimeSettings(outlier=OutlierPolicy(consecutive_failures=2)),
    )
    async with mesh:
        statuses = []
        for i in range(50):
            if i == 20:
                await b.stop()
            statuses.append((await fetch(mesh, f"http://billing/{i}"))[0])
        assert statuses == [200] * 50
        assert len(a.seen) > 25  # a took over
        assert list(mesh.runtimes.get("billing").outlier.ejected()) == ["b"]
        # b's failures were retried on a until b was ejected, then b was no longer picked.
        assert 1 <= mesh.runtimes.get("billing").budget.stats()["retries"] <= 3


async def test_all_instances_down_opens_the_breaker_which_then_refuses_offline() -> None:
    droppers = [await Dropper().start(), await Dropper().start()]
    policy = ServicePolicy(breaker=BreakerPolicy(fail_max=3, reset_timeout=60.0))
    registry = StaticRegistry({"billing": [d.member(f"d{n}") for n, d in enumerate(droppers)]})
    try:
        async with client(registry, policies={"billing": policy}) as mesh:
            for _ in range(3):
                with pytest.raises(aiohttp.ClientError):
                    await fetch(mesh, "http://billing/x")
            reached = sum(d.requests for d in droppers)
            assert reached == 6  # each call: the first attempt and its one retry
            for _ in range(5):
                with pytest.raises(CircuitOpen, match="'billing'"):
                    await fetch(mesh, "http://billing/x")
            assert sum(d.connections for d in droppers) == reached  # nothing went out
    finally:
        for d in droppers:
            await d.stop()


async def test_post_is_not_retried_by_default_get_is() -> None:
    dropper = await Dropper().start()
    good = await Instance("good").start()
    registry = StaticRegistry({"billing": [dropper.member("drop"), good.member()]})
    try:
        async with client(registry) as mesh:
            # Round robin starts at the dropper for the first call (seeded rng).
            outcomes = []
            for _ in range(2):
                try:
                    async with mesh.post("http://billing/pay", json={"n": 1}) as resp:
                        outcomes.append(resp.status)
                except aiohttp.ClientError:
                    outcomes.append(0)
            assert sorted(outcomes) == [0, 200]
            assert dropper.requests == 1  # the failed POST went once, never again
            assert [m for m, _, _ in good.seen] == ["POST"]
            # The same failure on a GET is retried on the other instance.
            statuses = [(await fetch(mesh, "http://billing/read"))[0] for _ in range(2)]
            assert statuses == [200, 200]
            assert dropper.requests == 2
    finally:
        await dropper.stop()
        await good.stop()


async def test_asked_for_retries_on_5xx_with_a_body_replayed(
    two: tuple[Instance, Instance],
) -> None:
    a, b = two
    a.status = 503
    policy = ServicePolicy(
        retry=RetrySpec(statuses=frozenset({503}), methods=frozenset({"GET", "POST"}))
    )
    registry = StaticRegistry({"billing": [a.member(), b.member()]})
    async with client(registry, policies={"billing": policy}) as mesh:
        for _ in range(2):
            async with mesh.post("http://billing/pay", data=b"abc") as resp:
                assert resp.status == 200
        assert len(b.seen) == 2


async def test_per_try_timeout_and_overall_timeout() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/{tail:.*}", slow)
    runner, port = await serve(app, shutdown_timeout=0.1)
    registry = StaticRegistry({"billing": [ServiceInstance("billing", "s", "127.0.0.1", port)]})
    policy = ServicePolicy(per_try_timeout=0.2, timeout=2.0)
    try:
        async with client(registry, policies={"billing": policy}) as mesh:
            started = asyncio.get_running_loop().time()
            with pytest.raises(TimeoutError):
                await fetch(mesh, "http://billing/x")
            assert asyncio.get_running_loop().time() - started < 1.5
    finally:
        await runner.cleanup()


# -- lanes and trace context through mesh_middleware --------------------------------------------


@pytest.fixture
async def lanes() -> AsyncIterator[tuple[Instance, Instance]]:
    stable, canary = await Instance("stable").start(), await Instance("canary").start()
    yield stable, canary
    await stable.stop()
    await canary.stop()


MESH = web.AppKey("mesh", MeshClient)


async def orders(mesh: MeshClient) -> tuple[web.AppRunner, int]:
    """A service calling billing from its handler; answers with what billing answered, or
    the error's type."""

    async def handle(request: web.Request) -> web.Response:
        try:
            async with request.app[MESH].get("http://billing/invoices") as resp:
                return web.json_response(await resp.json())
        except NoInstanceAvailable as exc:
            return web.json_response({"error": type(exc).__name__, "message": str(exc)})

    app = web.Application(middlewares=[mesh_middleware])
    app[MESH] = mesh
    app.router.add_get("/order", handle)
    return await serve(app)


async def call_orders(port: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/order", headers=headers or {}) as resp,
    ):
        answer: dict[str, Any] = await resp.json()
        return answer


async def test_inbound_lane_and_trace_are_carried_by_calls_made_in_the_handler(
    lanes: tuple[Instance, Instance],
) -> None:
    stable, canary = lanes
    registry = StaticRegistry({"billing": [stable.member(), canary.member(lane="canary")]})
    async with client(registry) as mesh:
        runner, port = await orders(mesh)
        try:
            unlaned = [(await call_orders(port))["instance"] for _ in range(6)]
            assert unlaned == ["stable"] * 6  # never the canary
            inbound = {
                "traceparent": f"00-{TRACE}-{PARENT}-01",
                "baggage": "user=42, lane=canary",
            }
            answer = await call_orders(port, inbound)
            assert answer["instance"] == "canary"
            sent = canary.seen[-1][2]
            assert sent["baggage"] == "user=42,lane=canary"
            _, trace_id, span_id, flags = sent["traceparent"].split("-")
            assert (trace_id, flags) == (TRACE, "01")
            assert span_id != PARENT
            # A lane with no instance falls back to stable, and says which lane was asked.
            await call_orders(port, {"baggage": "lane=blue"})
            assert stable.seen[-1][2]["baggage"] == "lane=blue"
        finally:
            await runner.cleanup()


async def test_strict_lane_without_instances_is_an_error(lanes: tuple[Instance, Instance]) -> None:
    stable, _ = lanes
    registry = StaticRegistry({"billing": [stable.member()]})
    policy = ServicePolicy(strict_lanes=True)
    async with client(registry, policies={"billing": policy}) as mesh:
        runner, port = await orders(mesh)
        try:
            answer = await call_orders(port, {"baggage": "lane=canary"})
            assert answer["error"] == NoLaneInstance.__name__
            assert "'billing'" in answer["message"] and "'canary'" in answer["message"]
            assert (await call_orders(port))["instance"] == "stable"
        finally:
            await runner.cleanup()


# -- Consul: from_env and the registration helper ----------------------------------------------


async def eventually(probe: Callable[[], Awaitable[T]], what: str, timeout: float = 10.0) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_from_env_discovers_through_consul_with_lanes(
    consul: ConsulAgent, lanes: tuple[Instance, Instance]
) -> None:
    stable, canary = lanes
    consul.register("billing", "billing-stable", stable.port)
    consul.register("billing", "billing-canary", canary.port, meta={"lane": "canary"})
    env = {"CONSUL_HTTP_ADDR": consul.http_addr}
    async with MeshClient.from_env(env, rng=random.Random(2)) as mesh:
        assert mesh.service_of("http://billing/x") == "billing"  # the catalog's names
        first = [(await fetch(mesh, "http://billing/a"))[1]["instance"] for _ in range(4)]
        assert first == ["stable"] * 4
        runner, port = await orders(mesh)
        try:
            answer = await call_orders(port, {"baggage": "lane=canary"})
            assert answer["instance"] == "canary"
        finally:
            await runner.cleanup()
        assert mesh.service_of("http://example.invalid/x") is None


async def test_registration_helper_registers_and_deregisters_an_app(consul: ConsulAgent) -> None:
    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    port = await Instance("probe").start()  # a free port: taken, then freed below
    free = port.port
    await port.stop()
    registration = registration_ctx(
        "inventory",
        free,
        service_id="inventory-1",
        meta={"lane": "canary"},
        check_interval=0.2,
        consul=ConsulSettings.from_env({"CONSUL_HTTP_ADDR": consul.http_addr}),
        grace=0.1,
    )
    app = web.Application()
    app.router.add_get("/health", health)
    app.cleanup_ctx.append(registration)
    runner, bound = await serve(app, free)
    assert bound == free

    async def passing() -> list[dict[str, Any]]:
        return consul.health_service("inventory", passing=True)

    try:
        (entry,) = await eventually(passing, "inventory to pass its check")
        assert entry["Service"]["ID"] == "inventory-1"
        assert entry["Service"]["Port"] == free
        assert entry["Service"]["Meta"] == {"lane": "canary"}
        (check,) = entry["Checks"][1:]
        assert check["Status"] == "passing" and check["Type"] == "http"
        await registration.leave()
        assert "inventory-1" not in consul.api("GET", "/v1/agent/services")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{free}/health") as resp,
        ):
            assert resp.status == 200  # still serving after it left
    finally:
        await runner.cleanup()
    assert "inventory-1" not in consul.api("GET", "/v1/agent/services")


async def test_from_env_takes_the_gateways_variables_and_the_files_services_policies(
    tmp_path: Any,
) -> None:
    """GATEWAY_BREAKER_FAIL_MAX opens the breaker of a service with no policy of its own, and
    the route file's ``services:`` section sets another service's retries and timeouts."""
    droppers = [await Dropper().start(), await Dropper().start()]
    slow = web.Application()

    async def sleepy(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.json_response({})

    slow.router.add_get("/{tail:.*}", sleepy)
    slow_runner, slow_port = await serve(slow, 0)
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "services:\n"
        "  billing:\n"
        "    instances: []\n"
        "    retry: {retries: 0}\n"
        "  reports:\n"
        "    response-timeout: 100\n"
        "    circuit-breaker: false\n"
    )
    env = {"GATEWAY_BREAKER_FAIL_MAX": "2", "GATEWAY_CONFIG": str(routes)}
    services = {
        "billing": [d.member(f"d{n}") for n, d in enumerate(droppers)],
        "ledger": [d.member(f"l{n}") for n, d in enumerate(droppers)],
        "reports": [ServiceInstance("reports", "r", "127.0.0.1", slow_port)],
    }
    try:
        async with MeshClient.from_env(env, services=services, discovery_wait=0) as mesh:
            # billing: no retry (the file), so each call reaches one dropper once.
            for _ in range(2):
                with pytest.raises(aiohttp.ClientError):
                    await fetch(mesh, "http://billing/x")
            assert sum(d.requests for d in droppers) == 2
            with pytest.raises(CircuitOpen):  # two failures: GATEWAY_BREAKER_FAIL_MAX
                await fetch(mesh, "http://billing/x")
            # ledger: the default policy (one retry) under the same env breaker.
            for _ in range(2):
                with pytest.raises(aiohttp.ClientError):
                    await fetch(mesh, "http://ledger/x")
            assert sum(d.requests for d in droppers) == 6
            with pytest.raises(CircuitOpen):
                await fetch(mesh, "http://ledger/x")
            # reports: a 100 ms per-try timeout, one retry, and no breaker at all.
            started = asyncio.get_running_loop().time()
            for _ in range(3):
                with pytest.raises(TimeoutError):
                    await fetch(mesh, "http://reports/x")
            assert asyncio.get_running_loop().time() - started < 0.9 * 3
    finally:
        await slow_runner.cleanup()
        for d in droppers:
            await d.stop()


def test_from_env_refuses_a_bad_variable_or_policy_naming_it(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="GATEWAY_BREAKER_FAIL_MAX: must be at least 1"):
        MeshClient.from_env({"GATEWAY_BREAKER_FAIL_MAX": "0"})
    with pytest.raises(ValueError, match="GATEWAY_RESPONSE_TIMEOUT"):
        MeshClient.from_env({"GATEWAY_RESPONSE_TIMEOUT": "soon"})
    routes = tmp_path / "routes.yaml"
    routes.write_text("services:\n  billing:\n    retry: {retries: -1}\n")
    with pytest.raises(ValueError, match=r"routes.yaml: services\.billing\.retry\.retries"):
        MeshClient.from_env({"GATEWAY_CONFIG": str(routes)})


async def test_a_cookie_an_instance_sets_is_not_sent_on_later_calls() -> None:
    """One client serves every caller in a process: it keeps no cookie jar."""
    seen: list[str | None] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        response = web.json_response({})
        response.set_cookie("session", "caller-a")
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner, port = await serve(app, 0)
    registry = StaticRegistry({"web": [ServiceInstance("web", "w", "localhost", port)]})
    try:
        async with client(registry) as mesh:
            for _ in range(2):
                await fetch(mesh, "http://web/x")
            await mesh.start()  # a second start changes nothing
            await fetch(mesh, "http://web/x")
        assert seen == [None, None, None]
    finally:
        await runner.cleanup()


async def test_metrics_count_calls_attempts_and_retries_as_spring_and_the_gateway_do() -> None:
    from discovery.mesh.metrics import MeshMetrics, exposition

    ok = await Instance("ok").start()
    dropper = await Dropper().start()
    registry = StaticRegistry({"billing": [dropper.member("d"), ok.member()]})
    try:
        async with client(registry, metrics=MeshMetrics()) as mesh:
            for _ in range(2):  # round robin from d: the first call's retry goes to ok
                status, _ = await fetch(mesh, "http://billing/x")
                assert status == 200
            with pytest.raises(aiohttp.ClientError):
                await fetch(mesh, f"http://127.0.0.1:{dropper.port}/direct")
            text = exposition(mesh.metrics_collector()).decode()
        labels = 'error="none",exception="none",method="GET",outcome="SUCCESS",status="200"'
        assert (
            f'http_client_requests_seconds_count{{client_name="billing",{labels},uri="none"}} 2.0'
            in text
        )
        assert (
            f'http_client_requests_seconds_count{{client_name="127.0.0.1:{dropper.port}",'
            'error="ServerDisconnectedError",exception="ServerDisconnectedError",method="GET",'
            'outcome="UNKNOWN",status="CLIENT_ERROR",uri="none"} 1.0'
        ) in text
        assert (
            'meshgate_upstream_attempts_total{instance="d",outcome="error",service="billing"} 1.0'
            in text
        )
        assert (
            'meshgate_upstream_attempts_total{instance="ok",outcome="2xx",service="billing"} 2.0'
            in text
        )
        assert 'meshgate_retries_total{service="billing"}' in text
        assert 'meshgate_circuit_breaker_state{name="billing"} 0.0' in text
        assert 'meshgate_instances{service="billing"} 2.0' in text
    finally:
        await ok.stop()
        await dropper.stop()


def test_from_env_counts_unless_gateway_metrics_is_false() -> None:
    assert MeshClient.from_env({}).metrics is not None
    assert MeshClient.from_env({"GATEWAY_METRICS": "false"}).metrics is None
    with pytest.raises(RuntimeError, match="without metrics"):
        MeshClient.from_env({"GATEWAY_METRICS": "false"}).metrics_collector()
    with pytest.raises(ValueError, match="GATEWAY_METRICS"):
        MeshClient.from_env({"GATEWAY_METRICS": "maybe"})
