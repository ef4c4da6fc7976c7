"""Every dashboard page in Chromium against one real gateway with traffic flowing (so the
numbers and charts have data): desktop and phone width, light and dark, and the Explain form.

One gateway and one browser serve the whole module; the fixture waits until the stats have
three complete 5 s series points before the first test looks at a chart.
"""

from __future__ import annotations

import re
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from tests.browser.helpers import (
    CHROMIUM,
    NO_CHROMIUM,
    PHONE,
    Tab,
    Traffic,
    eventually,
    open_tab,
    publish_to_docs,
    screenshot_path,
    wait_for_points,
)
from tests.support.gateway import RunningGateway, start_gateway
from tests.support.upstream import Upstream, start_upstream

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM),
    pytest.mark.asyncio(loop_scope="module"),
]

DASH = "\u2013"

# A small shop: orders (two stable instances in two zones and a canary), billing (two
# instances, retried) and a redirect. $-placeholders are the upstreams' ports.
ROUTES = string.Template("""
services:
  orders:
    - host: 127.0.0.1
      port: $orders_a
      metadata:
        zone: eu-west-1a
    - host: 127.0.0.1
      port: $orders_b
      metadata:
        zone: eu-west-1b
    - host: 127.0.0.1
      port: $orders_canary
      metadata:
        zone: eu-west-1a
        lane: canary
  billing:
    - host: 127.0.0.1
      port: $billing_a
      metadata:
        zone: eu-west-1a
    - host: 127.0.0.1
      port: $billing_b
      metadata:
        zone: eu-west-1b
spring:
  cloud:
    gateway:
      default-filters:
        - AddResponseHeader=X-Gateway, meshgate
      routes:
        - id: orders
          uri: lb://orders
          predicates:
            - Path=/api/orders/**
            - Method=GET,POST
          filters:
            - StripPrefix=2
            - LaneSplit=canary, 20, header:X-User-Id
            - name: CircuitBreaker
              args:
                name: orders
          metadata:
            owner: team-orders
            tier: critical
        - id: billing
          uri: lb://billing
          predicates:
            - Path=/api/billing/**
          filters:
            - StripPrefix=2
            - Retry=2
        - id: legacy-docs
          uri: http://127.0.0.1:$billing_a
          predicates:
            - Path=/docs/**
          filters:
            - RedirectTo=302, https://docs.example.org/
""")

# (weight, path): mostly fast answers, some slower ones, a few 5xx, a redirect, a 404.
PATHS = [
    (60, "/api/orders/42"),
    (20, "/api/orders/delay/0.02"),
    (3, "/api/orders/delay/0.08"),
    (1, "/api/orders/status/503"),
    (40, "/api/billing/invoices/7"),
    (1, "/api/billing/status/500"),
    (6, "/docs/guide"),
    (2, "/nowhere"),
]


@dataclass
class Busy:
    gateway: RunningGateway
    upstreams: list[Upstream]
    traffic: Traffic

    @property
    def dashboard(self) -> str:
        return f"{self.gateway.management_url}/dashboard"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def busy(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Busy]:
    names = ["orders_a", "orders_b", "orders_canary", "billing_a", "billing_b"]
    upstreams = [await start_upstream(name.replace("_", "-")) for name in names]
    document = tmp_path_factory.mktemp("dashboard") / "routes.yml"
    ports = {name: upstream.port for name, upstream in zip(names, upstreams, strict=True)}
    document.write_text(ROUTES.substitute(ports))
    gateway = await start_gateway(document)
    traffic = Traffic(gateway.url, PATHS)
    traffic.start()
    try:
        await wait_for_points(gateway, 3)
        yield Busy(gateway, upstreams, traffic)
    finally:
        await traffic.stop()
        await gateway.gateway.stop()
        for upstream in upstreams:
            await upstream.runner.cleanup()


async def go(page: Page, name: str) -> None:
    """Navigate with the top bar's link, as a user does (the menu first at phone width)."""
    toggle = page.locator("#nav-toggle")
    if await toggle.is_visible():
        await toggle.click()
    await page.locator("#nav").get_by_role("link", name=name, exact=True).click()
    await expect(page).to_have_url(re.compile(f"#/{name.lower()}$"))


async def shoot(page: Page, name: str) -> None:
    await page.screenshot(path=screenshot_path(name), full_page=True)


async def no_page_overflow(page: Page) -> None:
    """Nothing sticks out sideways: wide tables scroll inside their box, not the page."""
    widths = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"


async def test_every_page_renders_live_data_at_desktop_width_without_console_errors(
    browser: Browser, busy: Busy
) -> None:
    tab = await open_tab(browser, busy.dashboard)
    page = tab.page
    try:
        # Overview, the default page: big numbers and three charts with points.
        await expect(page).to_have_url(re.compile("#/overview$"))
        await expect(page.locator('[data-stat="Requests/s"] .stat-number')).not_to_have_text(DASH)
        await expect(page.locator('[data-stat="p99 latency"] .stat-number')).not_to_have_text(DASH)
        await expect(page.locator(".chart canvas")).to_have_count(3)
        await expect(page.locator(".chart-empty:visible")).to_have_count(0)
        await expect(page.locator("#live")).to_have_attribute("data-state", "live")
        await shoot(page, "overview")
        publish_to_docs("overview", "dashboard-overview.png")

        # Routes: the actuator's table joined with live numbers.
        await go(page, "Routes")
        rows = page.locator("tr[data-route]")
        await expect(rows).to_have_count(3)
        orders = page.locator('tr[data-route="orders"]')
        await expect(orders).to_contain_text("lb://orders")
        await expect(orders).to_contain_text("Path=/api/orders/**")
        await expect(orders).to_contain_text("StripPrefix")
        await expect(orders.locator("td").nth(6)).not_to_have_text(DASH)  # req/s, 1m
        await shoot(page, "routes")

        # A click on the row (not on its link) opens the route.
        await orders.locator("td").nth(1).click()
        await expect(page).to_have_url(re.compile("#/routes/orders$"))
        await expect(page.get_by_role("heading", name="Route orders")).to_be_visible()
        await expect(page.locator("main")).to_contain_text("LaneSplit=canary, 20, header:X-User-Id")
        await expect(page.locator("main")).to_contain_text('"owner": "team-orders"')
        await expect(page.locator(".chart canvas")).to_have_count(2)
        await expect(page.locator(".chart-empty:visible")).to_have_count(0)
        await shoot(page, "route-detail")

        # Services: instances by lane with health.
        await go(page, "Services")
        instances = page.locator("[data-instance]")
        await expect(instances).to_have_count(5)
        await expect(page.locator('[data-instance][data-healthy="true"]')).to_have_count(5)
        canary = page.locator('section[data-service="orders"] tbody[data-lane="canary"]')
        await expect(canary.locator("[data-instance]")).to_have_count(1)
        await expect(canary).to_contain_text("eu-west-1a")
        await expect(page.locator('section[data-service="orders"]')).to_contain_text("closed")
        await shoot(page, "services")
        publish_to_docs("services", "dashboard-services.png")

        await go(page, "Explain")
        await page.locator("#explain-url").fill("/api/orders/42")
        await page.locator("#explain-headers").fill("X-User-Id: 7")
        await page.get_by_role("button", name="Explain").click()
        await expect(page.get_by_test_id("explain-route")).to_have_text("orders")
        await shoot(page, "explain")

        await go(page, "Config")
        summary = page.get_by_test_id("config-summary")
        await expect(summary).to_contain_text("static")
        await expect(page.locator('tr[data-source="file"]')).to_contain_text("routes.yml")
        await shoot(page, "config")

        await no_page_overflow(page)
        assert tab.console.errors == []
    finally:
        await tab.close()


async def test_at_phone_width_the_nav_collapses_and_tables_scroll_inside_their_box(
    browser: Browser, busy: Busy
) -> None:
    tab = await open_tab(browser, busy.dashboard + "#/overview", viewport=PHONE)
    page = tab.page
    try:
        nav_links = page.locator("#nav a")
        await expect(page.locator("#nav-toggle")).to_be_visible()
        await expect(nav_links.first).to_be_hidden()
        await expect(page.locator(".chart canvas")).to_have_count(3)
        await expect(page.locator(".chart-empty:visible")).to_have_count(0)
        await no_page_overflow(page)
        await shoot(page, "phone-overview")

        await go(page, "Routes")
        await expect(nav_links.first).to_be_hidden()  # the menu closes on navigation
        await expect(page.locator("tr[data-route]")).to_have_count(3)
        await no_page_overflow(page)
        await shoot(page, "phone-routes")

        await go(page, "Services")
        await expect(page.locator("[data-instance]")).to_have_count(5)
        await no_page_overflow(page)
        # The instance table is wider than the phone: it scrolls in its own box.
        scroll = await page.locator("section[data-service=orders] .table-wrap").evaluate(
            "(box) => [box.scrollWidth, box.clientWidth, getComputedStyle(box).overflowX]"
        )
        assert scroll[0] > scroll[1] and scroll[2] == "auto", scroll
        await shoot(page, "phone-services")
        assert tab.console.errors == []
    finally:
        await tab.close()


async def test_explain_shows_the_route_a_typed_request_would_take(
    browser: Browser, busy: Busy
) -> None:
    tab = await open_tab(browser, busy.dashboard + "#/explain")
    page = tab.page
    try:
        await page.locator("#explain-method").select_option("GET")
        await page.locator("#explain-url").fill("/api/billing/invoices/7?expand=lines")
        await page.locator("#explain-headers").fill("Accept: application/json\nX-User-Id: 7")
        await page.locator("#explain-cookies").fill("session=abc")
        await page.locator("#explain-remote").fill("10.1.2.3")
        await page.get_by_role("button", name="Explain").click()

        await expect(page.get_by_test_id("explain-route")).to_have_text("billing")
        matched = page.locator('tr.is-matched[data-explain-route="billing"]')
        await expect(matched).to_have_count(1)
        await expect(matched).to_contain_text("yes")
        # The other routes are listed with their verdicts, not highlighted.
        orders = page.locator('tr[data-explain-route="orders"]')
        await expect(orders.first).to_contain_text("no")
        await expect(page.locator('tr.is-matched[data-explain-route="orders"]')).to_have_count(0)
        result = page.locator(".explain-result")
        await expect(result).to_contain_text("StripPrefix")
        await expect(result).to_contain_text("/invoices/7?expand=lines")  # as forwarded
        await expect(result).to_contain_text("10.1.2.3")
        await expect(page.get_by_test_id("explain-instance")).to_contain_text("billing")

        # DELETE fails orders' Method predicate and nothing else matches the path.
        await page.locator("#explain-method").select_option("DELETE")
        await page.locator("#explain-url").fill("/api/orders/1")
        await page.get_by_role("button", name="Explain").click()
        await expect(page.get_by_test_id("explain-route")).to_have_text("no route matches")
        await expect(page.locator("tr.is-matched")).to_have_count(0)
        await expect(orders.nth(1)).to_contain_text("DELETE")

        # A malformed header line is refused in the page, before any request.
        await page.locator("#explain-headers").fill("no colon here")
        await page.get_by_role("button", name="Explain").click()
        await expect(page.locator(".explain-form .form-error")).to_contain_text("Name: value")
        assert tab.console.errors == []
    finally:
        await tab.close()


async def chart_colour(tab: Tab) -> str:
    """The first chart's first series colour as uPlot drew its legend marker."""
    marker = tab.page.locator(".chart").first.locator(".u-series").nth(1).locator(".u-marker")
    colour: str = await marker.evaluate("(m) => getComputedStyle(m).borderTopColor")
    return colour


async def background(tab: Tab) -> tuple[int, ...]:
    text: str = await tab.page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    return tuple(int(n) for n in re.findall(r"\d+", text)[:3])


async def test_light_and_dark_mode_both_render_and_charts_follow_a_switch(
    browser: Browser, busy: Busy
) -> None:
    light = await open_tab(browser, busy.dashboard + "#/overview", color_scheme="light")
    dark = await open_tab(browser, busy.dashboard + "#/overview", color_scheme="dark")
    try:
        for tab in (light, dark):
            await expect(tab.page.locator(".chart canvas")).to_have_count(3)
            await expect(tab.page.locator(".chart-empty:visible")).to_have_count(0)
        assert sum(await background(light)) > 3 * 200  # a light page
        assert sum(await background(dark)) < 3 * 60  # a dark page
        light_series, dark_series = await chart_colour(light), await chart_colour(dark)
        assert light_series != dark_series
        await shoot(dark.page, "dark-overview")
        await go(dark.page, "Services")
        await expect(dark.page.locator("[data-instance]")).to_have_count(5)
        await shoot(dark.page, "dark-services")

        # The system switching to light while the page is open: charts rebuild in its colours.
        await go(dark.page, "Overview")
        await expect(dark.page.locator(".chart canvas")).to_have_count(3)
        await dark.page.emulate_media(color_scheme="light")
        switched = await eventually(
            lambda: chart_colour(dark), lambda colour: colour == light_series
        )
        assert switched == light_series
        await expect(dark.page.locator(".chart canvas")).to_have_count(3)
        assert light.console.errors == []
        assert dark.console.errors == []
    finally:
        await light.close()
        await dark.close()
