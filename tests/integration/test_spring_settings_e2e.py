"""A Spring application.yml's settings beyond routes, in force on real requests."""

from __future__ import annotations

import aiohttp
import pytest

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
    assert answer.request_headers["X-Forwarded-For"] == "203.0.113.7,127.0.0.1"
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


async def test_global_secure_headers_settings_as_scg_applies_them(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        {NEW}:
          filter.secure-headers:
            frame-options: SAMEORIGIN
            disable: [x-download-options]
            enable: [permissions-policy]
            permissions-policy: camera=()
          routes:
            - id: own
              uri: {upstream.url}
              predicates: [Path=/own/**]
              filters:
                - name: SecureHeaders
                  args: {{disable: x-frame-options}}
            - id: global
              uri: {upstream.url}
              filters: [SecureHeaders]
        """
    )
    headers = (await get(session, f"{gw.url}/x")).headers
    assert headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "X-Download-Options" not in headers
    assert headers["Permissions-Policy"] == "camera=()"
    # A route that says which headers decides alone (SCG): the global lists don't apply,
    # the global values still do.
    own = (await get(session, f"{gw.url}/own/x")).headers
    assert "X-Frame-Options" not in own and own["X-Download-Options"] == "noopen"
    assert "Permissions-Policy" not in own
    assert own["Referrer-Policy"] == "no-referrer"


async def test_an_unknown_global_secure_header_is_an_error(make_gateway: MakeGateway) -> None:
    from gateway.config.errors import ConfigErrors

    with pytest.raises(ConfigErrors, match=r"filter\.secure-headers\.disable: unknown header"):
        await make_gateway(
            f"{NEW}:\n  filter.secure-headers.disable: [x-frame]\n"
            "  routes:\n    - {id: r, uri: 'http://127.0.0.1:1', filters: [SecureHeaders]}\n"
        )


async def test_locator_predicates_and_filters_as_scg_documents_them(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        services:
          orders:
            - {{host: 127.0.0.1, port: {upstream.port}}}
        {NEW}.discovery.locator:
          enabled: true
          predicates:
            - name: Path
              args:
                pattern: "'/api/'+serviceId+'/**'"
          filters:
            - name: RewritePath
              args:
                regexp: "'/api/' + serviceId + '/?(?<remaining>.*)'"
                replacement: "'/${{remaining}}'"
        """
    )
    answer = await get(session, f"{gw.url}/api/orders/items")
    assert (answer.status, answer.path) == (200, "/items")
    assert (await get(session, f"{gw.url}/orders/items")).status == 404
