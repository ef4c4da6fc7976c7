"""A Spring application.yml's settings beyond routes, in force on real requests."""

from __future__ import annotations

import aiohttp

from tests.conftest import MakeGateway
from tests.support.echoed import get
from tests.support.upstream import Upstream

NEW = "spring.cloud.gateway.server.webflux"


async def test_httpclient_response_timeout_is_the_default_of_every_route(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    # SCG answered 504 here where meshgate once waited for the upstream.
    gw = await make_gateway(
        f"""
        {NEW}:
          httpclient: {{connect-timeout: 1000, response-timeout: 300ms}}
          routes:
            - id: slow
              uri: {upstream.url}
            - id: patient
              uri: {upstream.url}
              predicates: [Path=/patient/**]
              filters: [StripPrefix=1]
              metadata: {{response-timeout: 3000}}
        """
    )
    assert (await get(session, f"{gw.url}/delay/1")).status == 504
    assert (await get(session, f"{gw.url}/patient/delay/1")).status == 200  # the route's own


async def test_trusted_proxies_keep_a_trusted_clients_forwarded_chain(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    text = f"""
        {NEW}:
          trusted-proxies: {{trusted}}
          routes:
            - id: echo
              uri: {upstream.url}
        """
    sent = {"X-Forwarded-For": "203.0.113.7"}
    trusted = await make_gateway(text.format(trusted=r"127\.0\.0\.1"))
    answer = await get(session, f"{trusted.url}/x", headers=sent)
    assert answer.request_headers["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1"
    untrusted = await make_gateway(text.format(trusted=r"10\..*"))
    answer = await get(session, f"{untrusted.url}/x", headers=sent)
    assert answer.request_headers["X-Forwarded-For"] == "127.0.0.1"


async def test_discovery_locator_from_the_document(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(
        f"""
        services:
          Orders:
            - {{host: 127.0.0.1, port: {upstream.port}, metadata: {{edge: "true"}}}}
          internal:
            - {{host: 127.0.0.1, port: {upstream_b.port}}}
        {NEW}:
          discovery:
            locator:
              enabled: true
              lower-case-service-id: true
              route-id-prefix: sd-
              include-expression: metadata['edge'] == 'true'
        """
    )
    answer = await get(session, f"{gw.url}/orders/items?id=1")
    assert (answer.status, answer.upstream, answer.path) == (200, "a", "/items")
    assert (await get(session, f"{gw.url}/internal/x")).status == 404  # not included
    async with session.get(f"{gw.management_url}/actuator/gateway/routes") as resp:
        ids = [route["route_id"] for route in await resp.json()]
    assert ids == ["sd-Orders"]
