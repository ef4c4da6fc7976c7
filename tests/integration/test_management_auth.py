"""GATEWAY_MANAGEMENT_TOKEN on a real gateway process: every actuator endpoint but the
liveness and readiness probes needs it as a bearer token; route writes on a network-reachable
management address without a token stop the gateway at start-up."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.gateway import GatewayProcess, spawn_gateway
from tests.support.ports import free_port
from tests.support.raw_http import exchange_raw, status_of

pytestmark = pytest.mark.slow

TOKEN = "mgmt-7f3a9c2e51d84b06"
GUARDED = [
    "/actuator/health",
    "/actuator/prometheus",
    "/actuator/gateway/routes",
    "/actuator/gateway/routedefinitions",
    "/actuator/gateway/globalfilters",
]
OPEN = ["/actuator/health/liveness", "/actuator/health/readiness"]


def routes_file(tmp_path: Path) -> Path:
    path = tmp_path / "routes.yml"
    path.write_text(
        textwrap.dedent(
            """\
            routes:
              - id: nowhere
                uri: no://op
                predicates: [Path=/nowhere/**]
            """
        )
    )
    return path


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One process for the module's read-mostly tests. On the wildcard address with writes
    on: allowed, because the token is set."""
    tmp_path = tmp_path_factory.mktemp("guarded")
    gateway = spawn_gateway(
        routes_file(tmp_path),
        tmp_path,
        GATEWAY_MANAGEMENT_TOKEN=TOKEN,
        GATEWAY_MANAGEMENT_HOST="0.0.0.0",
        GATEWAY_MANAGEMENT_WRITE="true",
    )
    yield gateway
    gateway.stop()


async def _get(
    session: aiohttp.ClientSession, url: str, authorization: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with session.get(url, headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


async def test_without_the_token_the_endpoints_refuse(
    guarded: GatewayProcess, session: aiohttp.ClientSession
) -> None:
    for path in [*GUARDED, "/actuator/nothing-here"]:
        status, headers, body = await _get(session, guarded.management_url + path)
        assert status == 401, path
        assert headers["WWW-Authenticate"] == 'Bearer realm="meshgate"'
        assert headers["Content-Type"].startswith("application/json")
        error = json.loads(body)
        assert (error["status"], error["error"], error["path"]) == (401, "Unauthorized", path)
        assert TOKEN not in body.decode()


@pytest.mark.parametrize(
    "authorization", [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN]
)
async def test_a_wrong_token_is_refused(
    guarded: GatewayProcess, session: aiohttp.ClientSession, authorization: str
) -> None:
    status, headers, body = await _get(
        session, guarded.management_url + "/actuator/health", authorization
    )
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer realm="meshgate", error="invalid_token"'
    assert json.loads(body)["message"] == "the bearer token is not valid"


async def test_the_token_opens_every_endpoint(
    guarded: GatewayProcess, session: aiohttp.ClientSession
) -> None:
    bearer = f"Bearer {TOKEN}"
    for path in GUARDED:
        status, _, body = await _get(session, guarded.management_url + path, bearer)
        assert status == 200, (path, body)
    _, _, metrics = await _get(session, guarded.management_url + "/actuator/prometheus", bearer)
    assert b"# TYPE" in metrics
    status, _, _ = await _get(session, guarded.management_url + "/actuator/nothing-here", bearer)
    assert status == 404
    # Writes too (they are on): a route added, then found.
    route = {"uri": "no://op", "predicates": ["Path=/added/**"]}
    url = guarded.management_url + "/actuator/gateway/routes/added"
    async with session.post(url, json=route) as response:
        assert response.status == 401
    async with session.post(url, json=route, headers={"Authorization": bearer}) as response:
        assert response.status == 201
    status, _, _ = await _get(session, url, bearer)
    assert status == 200


async def test_the_probes_stay_open(
    guarded: GatewayProcess, session: aiohttp.ClientSession
) -> None:
    for path in OPEN:
        for authorization in (None, "Bearer wrong"):
            status, _, body = await _get(session, guarded.management_url + path, authorization)
            assert status == 200, (path, authorization)
            assert json.loads(body)["status"] == "UP"


@pytest.mark.parametrize(
    "target",
    [
        b"/actuator/health/liveness/../../prometheus",
        b"/actuator/health/readiness/%2e%2e/%2e%2e/prometheus",
        b"/actuator/health/liveness/",
        b"/actuator/health//liveness/../../health",
        b"/actuator/health/liveness?x=/actuator/prometheus",
    ],
)
async def test_no_spelling_of_a_probe_path_opens_another_endpoint(
    guarded: GatewayProcess, target: bytes
) -> None:
    request = b"GET " + target + b" HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n"
    response = await exchange_raw(guarded.management_port, request)
    status = status_of(response)
    if target.startswith(b"/actuator/health/liveness?"):
        assert status == 200  # the probe itself, with a query: still only the probe
        assert b"# TYPE" not in response
    else:
        assert status in (401, 404), response[:200]
        assert b"# TYPE" not in response and b'"components"' not in response


def _start_refused(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(free_port()),
        "GATEWAY_MANAGEMENT_PORT": str(free_port()),
        "GATEWAY_CONFIG": str(routes_file(tmp_path)),
        **env,
    }
    full_env.pop("GATEWAY_MANAGEMENT_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "gateway"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
async def test_writes_on_an_exposed_address_without_a_token_refuse_to_start(
    tmp_path: Path, host: str
) -> None:
    done = await asyncio.to_thread(
        _start_refused, tmp_path, GATEWAY_MANAGEMENT_HOST=host, GATEWAY_MANAGEMENT_WRITE="true"
    )
    assert done.returncode == 2
    assert "GATEWAY_MANAGEMENT_TOKEN" in done.stderr
    assert f"non-loopback management address {host!r}" in done.stderr


async def test_writes_on_loopback_without_a_token_start(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    gateway = await asyncio.to_thread(
        spawn_gateway,
        routes_file(tmp_path),
        tmp_path,
        GATEWAY_MANAGEMENT_HOST="127.0.0.1",
        GATEWAY_MANAGEMENT_WRITE="true",
    )
    try:
        # No token configured: the actuator is open, as it always was on loopback.
        status, _, _ = await _get(session, gateway.management_url + "/actuator/health")
        assert status == 200
    finally:
        await asyncio.to_thread(gateway.stop)
