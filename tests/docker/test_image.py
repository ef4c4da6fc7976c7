"""The production image (docker/Dockerfile) as a container: healthy, routing, not root, drained
by ``docker stop``, refusing a bad route file; its size; and the compose file's validity."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.docker_env import docker
from tests.support.ports import free_port
from tests.support.upstream import Upstream, start_upstream

ROOT = Path(__file__).resolve().parent.parent.parent
READINESS = "/actuator/health/readiness"
SIZE_REPORT = ROOT / "build" / "docker-image-size.txt"
SIZE_TARGET = 150 * 1000 * 1000  # bytes over the base image
ROUTES = """\
spring:
  cloud:
    gateway:
      routes:
        - id: echo
          uri: {upstream}
          predicates:
            - Path=/**
"""
BAD_ROUTES = """\
spring:
  cloud:
    gateway:
      routes:
        - id: broken
          uri: http://127.0.0.1:1
          predicates:
            - Nope=1
"""


async def run(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        docker(), *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def inspect(name: str) -> dict[str, object]:
    code, out, err = await run("inspect", name)
    assert code == 0, err
    found: list[dict[str, object]] = json.loads(out)
    return found[0]


class Container:
    """One gateway container on the host network, its ports free ones of 127.0.0.1."""

    def __init__(self, image: str, routes: Path, names: list[str]) -> None:
        self.image = image
        self.routes = routes
        self.name = f"meshgate-test-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.management_port = free_port()
        names.append(self.name)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        return [
            "--network",
            "host",
            "--name",
            self.name,
            # The image's own check, asked every second instead of every ten.
            "--health-interval",
            "1s",
            "-e",
            "GATEWAY_HOST=127.0.0.1",
            "-e",
            f"GATEWAY_PORT={self.port}",
            "-e",
            f"GATEWAY_MANAGEMENT_PORT={self.management_port}",
            "-e",
            "GATEWAY_CONFIG=/etc/meshgate/routes.yml",
            "-v",
            f"{self.routes}:/etc/meshgate/routes.yml:ro",
            self.image,
        ]

    async def start(self) -> None:
        code, _out, err = await run("run", "-d", *self.args())
        assert code == 0, err

    async def health(self) -> str:
        state = (await inspect(self.name))["State"]
        assert isinstance(state, dict)
        health = state.get("Health") or {}
        return str(health.get("Status", "none")) if state.get("Running") else "exited"

    async def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        status = "none"
        while time.monotonic() < deadline:
            status = await self.health()
            if status in ("healthy", "exited"):
                break
            await asyncio.sleep(0.25)
        if status != "healthy":
            _code, out, err = await run("logs", "--tail", "30", self.name)
            pytest.fail(f"container {self.name} is {status}, not healthy:\n{out}{err}")


def proc_file(pid: int, name: str) -> str:
    return Path(f"/proc/{pid}/{name}").read_bytes().decode(errors="replace")


def write_routes(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o644)  # the container's user reads it
    return path


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = await start_upstream("a")
    yield server
    await server.runner.cleanup()


@pytest.fixture
async def gateway(
    image: str, upstream: Upstream, tmp_path: Path, containers: list[str]
) -> Container:
    routes = write_routes(tmp_path / "routes.yml", ROUTES.format(upstream=upstream.url))
    container = Container(image, routes, containers)
    await container.start()
    await container.wait_healthy()
    return container


async def test_healthy_container_routes_as_non_root(gateway: Container) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{gateway.url}/hello") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["upstream"] == "a"
    assert body["path"] == "/hello"
    details = await inspect(gateway.name)
    config, state = details["Config"], details["State"]
    assert isinstance(config, dict)
    assert isinstance(state, dict)
    assert config["User"] == "10001:10001"
    assert READINESS in " ".join(config["Healthcheck"]["Test"])
    assert config["Entrypoint"] == ["meshgate"]
    # The process itself, as the host's kernel sees it: every uid and gid is meshgate's, and
    # it is PID 1 in the container (no shell between docker and it to swallow signals).
    status = proc_file(int(state["Pid"]), "status")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    assert fields["Uid"].split() == ["10001"] * 4
    assert fields["Gid"].split() == ["10001"] * 4
    assert fields["NSpid"].split()[-1] == "1"
    assert "meshgate" in proc_file(int(state["Pid"]), "cmdline")


async def test_the_image_serves_the_dashboard_from_the_wheel(gateway: Container) -> None:
    # Package data: the page and the vendored chart library are in the installed wheel.
    base = f"http://127.0.0.1:{gateway.management_port}"
    async with aiohttp.ClientSession() as session:
        for path in (
            "/dashboard",
            "/dashboard/dashboard.js",
            "/dashboard/vendor/uPlot.iife.min.js",
        ):
            async with session.get(base + path) as resp:
                assert resp.status == 200, path
                assert len(await resp.read()) > 500, path
        async with session.get(base + "/actuator/gateway/stats") as resp:
            assert resp.status == 200
            assert "totals" in await resp.json()


async def test_docker_stop_finishes_in_flight_requests_and_exits_0(gateway: Container) -> None:
    async def slow(session: aiohttp.ClientSession) -> int:
        async with session.get(f"{gateway.url}/delay/2") as resp:
            await resp.read()
            return resp.status

    async with aiohttp.ClientSession() as session:
        requests = [asyncio.create_task(slow(session)) for _ in range(8)]
        await asyncio.sleep(0.5)  # all of them at the upstream, waiting
        started = time.monotonic()
        code, _out, err = await run("stop", "--time", "30", gateway.name)
        stopped_after = time.monotonic() - started
        statuses = await asyncio.gather(*requests)
    assert code == 0, err
    assert statuses == [200] * 8
    # It waited for them (not killed at once), and well within docker's 30 s.
    assert 1.0 < stopped_after < 20
    state = (await inspect(gateway.name))["State"]
    assert isinstance(state, dict)
    assert state["ExitCode"] == 0
    assert state["OOMKilled"] is False
    _code, logs, errors = await run("logs", gateway.name)
    assert "shutdown timeout reached" not in logs + errors


async def test_bad_route_file_exits_2_with_the_reason(
    image: str, tmp_path: Path, containers: list[str]
) -> None:
    routes = write_routes(tmp_path / "bad.yml", BAD_ROUTES)
    container = Container(image, routes, containers)
    code, out, err = await run("run", *container.args(), timeout=60)
    assert code == 2, out + err
    assert "predicates[0] (Nope): unknown predicate 'Nope'" in out + err


def test_image_size_over_the_base(image: str) -> None:
    """Reported in build/docker-image-size.txt (`make test-docker` prints it)."""
    base = os.environ.get("MESHGATE_BASE_IMAGE", "meshgate-base:bookworm")
    sizes = []
    for name in (image, base):
        found = subprocess.run(
            [docker(), "image", "inspect", "--format", "{{.Size}}", name],
            capture_output=True,
            text=True,
        )
        assert found.returncode == 0, found.stderr
        sizes.append(int(found.stdout))
    over = sizes[0] - sizes[1]
    report = (
        f"{image}: {sizes[0] / 1e6:.1f} MB, {over / 1e6:.1f} MB over {base} "
        f"({sizes[1] / 1e6:.1f} MB; target < {SIZE_TARGET / 1e6:.0f} MB over)\n"
    )
    SIZE_REPORT.parent.mkdir(exist_ok=True)
    SIZE_REPORT.write_text(report)
    print(report, end="")
    assert over < SIZE_TARGET, report


def test_compose_file_is_valid() -> None:
    """Debian's docker-compose (1.29) reads the whole file: anchors, merges, depends_on
    conditions, build sections."""
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker" / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
