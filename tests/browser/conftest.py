"""The dashboard in a real browser: Debian's Chromium driven headless by Playwright's async API
(no browser download; ``make test`` installs /usr/bin/chromium), against a real in-process
gateway, real upstream servers and, for the health test, a real Consul agent.

Every test module here runs on one event loop per module (``loop_scope="module"``) so that one
browser (and, in the pages module, one gateway with traffic flowing) serves all its tests; so
every async fixture here is module-loop too, and the tests start their gateways themselves
instead of using the function-loop ``make_gateway`` fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from tests.browser.helpers import CHROMIUM
from tests.support.consul import CONSUL_VERSION, ConsulAgent, consul_binary


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            await launched.close()


# -- Consul ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def consul_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsulAgent]:
    """A real ``consul agent -dev``. As in tests/integration, a missing binary fails the test
    (a skipped health test would read as green); ``make consul`` builds it first."""
    try:
        binary = consul_binary(build=False)
    except RuntimeError as error:
        pytest.fail(f"no Consul {CONSUL_VERSION} binary: {error}", pytrace=False)
    agent = ConsulAgent(binary, log_dir=tmp_path_factory.mktemp("consul"))
    try:
        agent.start()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    yield agent
    agent.stop()


@pytest.fixture
def consul(consul_agent: ConsulAgent) -> Iterator[ConsulAgent]:
    consul_agent.ensure_running()
    yield consul_agent
    if consul_agent.running:
        consul_agent.reset()
