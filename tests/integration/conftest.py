"""A real Consul agent for the service-discovery tests: one ``-dev`` agent per session (it starts
in well under a second, but there is no need to pay that per test), wiped between tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.consul import CONSUL_VERSION, ConsulAgent, consul_binary
from tests.support.otlp import OtlpReceiver


@pytest.fixture(scope="session")
def consul_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsulAgent]:
    """The session's agent. A missing binary fails the tests instead of skipping them: skipped
    discovery tests would read as green. It is not built here because the build takes minutes,
    far beyond the per-test timeout; ``make consul`` (run by ``make test``) builds it first."""
    try:
        binary = consul_binary(build=False)
    except RuntimeError as error:
        pytest.fail(f"no Consul {CONSUL_VERSION} binary: {error}", pytrace=False)
    # Under pytest's tmp dir, so a failed run keeps the agent's log for inspection.
    agent = ConsulAgent(binary, log_dir=tmp_path_factory.mktemp("consul"))
    try:
        agent.start()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    yield agent
    agent.stop()


@pytest.fixture
def consul(consul_agent: ConsulAgent) -> Iterator[ConsulAgent]:
    """The session's agent, serving, and left clean for the next test: no services but Consul's
    own, no KV keys. A test that stopped or restarted the agent gets it back running."""
    consul_agent.ensure_running()
    yield consul_agent
    # A stopped agent comes back empty (-dev keeps nothing), so only a live one needs wiping.
    if consul_agent.running:
        consul_agent.reset()


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    """A real OTLP/HTTP trace receiver on a free port, for the tracing tests."""
    server = await OtlpReceiver().start()
    yield server
    await server.stop()
