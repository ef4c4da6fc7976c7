"""Which URLs the mesh client treats as services, and its per-service state; no network."""

from __future__ import annotations

import random

import aiohttp
import pytest

from discovery.instance import ServiceInstance
from discovery.mesh import MeshClient, ServicePolicy
from discovery.static import StaticRegistry
from tests.support.clock import FakeClock


def mesh(**options: object) -> MeshClient:
    registry = StaticRegistry({"billing": [ServiceInstance("billing", "b1", "127.0.0.1", 9)]})
    return MeshClient(registry, rng=random.Random(1), clock=FakeClock(), **options)  # type: ignore[arg-type]


def test_service_names_lb_urls_and_direct_hosts() -> None:
    client = mesh(policies={"Ledger": ServicePolicy()})
    assert client.service_of("http://billing/invoices/7") == "billing"
    assert client.service_of("https://BILLING/x") == "billing"  # hosts compare folded
    assert client.service_of("lb://anything/x") == "anything"
    assert client.service_of("http://ledger/x") == "ledger"  # known by its policy
    assert client.service_of("http://billing:8080/x") is None  # an address, not a name
    assert client.service_of("http://127.0.0.1/x") is None
    assert client.service_of("http://example.com/x") is None
    with pytest.raises(ValueError, match="only http, https and lb"):
        client.service_of("ftp://billing/x")
    with pytest.raises(ValueError, match="names no host"):
        client.service_of("/relative")


def test_the_registry_names_are_reread_after_a_second() -> None:
    clock = FakeClock()
    registry = StaticRegistry()
    client = MeshClient(registry, clock=clock)
    assert client.service_of("http://billing/x") is None
    registry.replace({"billing": [ServiceInstance("billing", "b1", "127.0.0.1", 9)]})
    assert client.service_of("http://billing/x") is None  # the names are cached
    clock.advance(1.0)
    assert client.service_of("http://billing/x") == "billing"


async def test_a_call_before_start_says_how_to_start() -> None:
    with pytest.raises(RuntimeError, match="async with"):
        await mesh().get("http://billing/x")


async def test_the_session_does_not_resend_on_its_own() -> None:
    # aiohttp's own resend of a dropped idempotent request is switched off (the retry loop
    # does it, to another instance); this fails if aiohttp renames the switch.
    client = mesh()
    async with client:
        session = client._session
        assert isinstance(session, aiohttp.ClientSession)
        assert session._retry_connection is False
    assert client._session is None
