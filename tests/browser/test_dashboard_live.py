"""The dashboard's live paths in Chromium: an instance failing its Consul health check turns
unhealthy on the Services page without a reload, and with a management token the page asks
for it and then works, the stats stream included."""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.browser.helpers import (
    CHROMIUM,
    NO_CHROMIUM,
    eventually,
    get_stats,
    open_tab,
    screenshot_path,
)
from tests.support.consul import ConsulAgent
from tests.support.gateway import RunningGateway, start_gateway
from tests.support.upstream import start_upstream

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM),
    pytest.mark.asyncio(loop_scope="module"),
]

ORDERS = """
routes:
  - id: orders
    uri: lb://orders
    predicates: [Path=/orders/**]
"""


async def instance_ids(gateway: RunningGateway) -> dict[int, str]:
    """The orders instances' ids in the stats, by port."""
    stats = await get_stats(gateway)
    return {
        instance["port"]: instance["instanceId"]
        for service in stats["services"]
        if service["service"] == "orders"
        for instance in service["instances"]
    }


def register_with_http_check(consul: ConsulAgent, service_id: str, port: int) -> None:
    """An instance whose health Consul checks itself: GET on the upstream every second."""
    consul.api(
        "PUT",
        "/v1/agent/service/register",
        {
            "Name": "orders",
            "ID": service_id,
            "Address": "127.0.0.1",
            "Port": port,
            "Meta": {"zone": "z1"},
            "Check": {
                "CheckID": f"service:{service_id}",
                "Name": "orders HTTP",
                "HTTP": f"http://127.0.0.1:{port}/health",
                "Interval": "1s",
                "Timeout": "1s",
                # Start passing: the first run would otherwise wait an interval.
                "Status": "passing",
            },
        },
    )


async def test_a_stopped_instance_turns_unhealthy_live_within_five_seconds(
    browser: Browser, consul: ConsulAgent, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    doomed = await start_upstream("orders-0")
    survivor = await start_upstream("orders-1")
    register_with_http_check(consul, "orders-0", doomed.port)
    register_with_http_check(consul, "orders-1", survivor.port)
    document = tmp_path / "routes.yml"
    document.write_text(textwrap.dedent(ORDERS))
    monkeypatch.setenv("CONSUL_HTTP_ADDR", consul.http_addr)
    gateway = await start_gateway(
        document, discovery="consul", register_self=False, consul_wait="5s"
    )
    tab = None
    doomed_running = True
    try:
        assert await gateway.gateway.consul.wait_ready(10)  # type: ignore[union-attr]
        # The registry names instances itself (Consul: service id @ node): ask it which is which.
        ids = await eventually(lambda: instance_ids(gateway), lambda found: len(found) == 2)
        doomed_id, survivor_id = ids[doomed.port], ids[survivor.port]
        tab = await open_tab(browser, f"{gateway.management_url}/dashboard#/services")
        page = tab.page
        doomed_row = page.locator(f'[data-instance="{doomed_id}"]')
        await expect(page.locator('[data-instance][data-healthy="true"]')).to_have_count(2)
        await expect(doomed_row).to_contain_text("passing")
        # Marks this document: a reload would lose it.
        await page.evaluate("() => { window.__sameDocument = true; }")

        stopped = time.monotonic()
        doomed_running = False
        await doomed.runner.cleanup()
        turned = page.locator(f'[data-instance="{doomed_id}"][data-healthy="false"]')
        left = max(0.0, 5.0 - (time.monotonic() - stopped))
        await expect(turned).to_have_count(1, timeout=left * 1000)
        took = time.monotonic() - stopped
        assert took <= 5.0, f"unhealthy after {took:.1f} s"

        await expect(doomed_row).to_contain_text("critical")
        await expect(doomed_row.locator("td").nth(2)).to_have_text("no")  # "Healthy"
        await expect(page.locator(f'[data-instance="{survivor_id}"]')).to_have_attribute(
            "data-healthy", "true"
        )
        assert await page.evaluate("() => window.__sameDocument === true"), "the page reloaded"
        await page.screenshot(path=screenshot_path("services-unhealthy"), full_page=True)
        assert tab.console.errors == []
    finally:
        if tab is not None:
            await tab.close()
        await gateway.gateway.stop()
        await survivor.runner.cleanup()
        if doomed_running:
            await doomed.runner.cleanup()


# Chromium logs every 401 answer as a console error ("Failed to load resource: ... 401"):
# those are the expected challenge, any other error is not.
UNAUTHORIZED = re.compile(r"Failed to load resource: the server responded with a status of 401")


async def test_with_a_management_token_the_page_asks_for_it_and_then_works(
    browser: Browser, tmp_path: Path
) -> None:
    upstream = await start_upstream("orders-0")
    document = tmp_path / "routes.yml"
    document.write_text(
        textwrap.dedent(f"""
        services:
          orders:
            - {{host: 127.0.0.1, port: {upstream.port}}}
        routes:
          - id: orders
            uri: lb://orders
            predicates: [Path=/orders/**]
        """)
    )
    token = "dashboard-test-token-0123456789"
    gateway = await start_gateway(document, management_token=token)
    tab = None
    try:
        tab = await open_tab(browser, f"{gateway.management_url}/dashboard#/routes")
        page = tab.page
        form = page.get_by_test_id("token-form")
        await expect(form).to_be_visible()
        await expect(page.locator("tr[data-route]")).to_have_count(0)
        password = form.locator('input[type="password"]')
        await page.screenshot(path=screenshot_path("token-form"))

        # A wrong token is refused and the form comes back saying so.
        await password.fill("not-the-token")
        await form.get_by_role("button").click()
        await expect(form).to_contain_text("not accepted")
        await expect(form).to_be_visible()

        await password.fill(token)
        await form.get_by_role("button").click()
        await expect(form).to_be_hidden()
        await expect(page.locator('tr[data-route="orders"]')).to_contain_text("lb://orders")
        stored = await page.evaluate("() => sessionStorage.getItem('meshgate.managementToken')")
        assert stored == token

        # The stream (fetch with the bearer header) and the other pages work with it.
        await expect(page.locator("#live")).to_have_attribute("data-state", "live")
        await page.locator("#nav").get_by_role("link", name="Services").click()
        await expect(page.locator("[data-instance]")).to_have_count(1)
        await page.locator("#nav").get_by_role("link", name="Config").click()
        summary = page.get_by_test_id("config-summary")
        await expect(summary).to_contain_text("Management token")
        await expect(summary).not_to_contain_text("not required")

        # A reload keeps the token for the tab: no form again.
        await page.reload()
        await expect(page.get_by_test_id("config-summary")).to_be_visible()
        await expect(page.locator("#live")).to_have_attribute("data-state", "live")
        await expect(form).to_be_hidden()
        unexpected = [e for e in tab.console.errors if not UNAUTHORIZED.search(e)]
        assert unexpected == []
    finally:
        if tab is not None:
            await tab.close()
        await gateway.gateway.stop()
        await upstream.runner.cleanup()
