"""ApiKey and BasicAuth end to end: the real gateway process (and, for Consul KV key sets, the
gateway with a real Consul agent) in front of a real upstream that echoes what it received.

What is shown: the right key passes as its principal, which keys the RequestRateLimiter (one
bucket per key name); wrong and missing keys are 401s with the challenge; neither the key
header nor Authorization reaches the upstream; a keys file is re-read on SIGHUP; a malformed
keys file or a non-bcrypt htpasswd entry stops the start with file:line; a Consul key set
applies changes live, keeps its last good set through a malformed one, and revokes all on
delete; the access log carries the principal.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import signal
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest

from gateway.errors import ConfigError
from tests.support.consul import ConsulAgent
from tests.support.gateway import GatewayProcess, spawn_gateway, start_gateway
from tests.support.upstream import Upstream


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def call(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    async with session.get(url, headers=headers or {}) as response:
        raw = await response.read()
        parsed = json.loads(raw) if raw.startswith(b"{") else None
        return response.status, dict(response.headers), parsed


def forwarded_names(echo: Any) -> set[str]:
    return {name.lower() for name, _ in echo["headers"]}


async def eventually(probe: Callable[[], Awaitable[bool]], what: str) -> None:
    """Consul applies a change asynchronously and the watch wakes on it: poll, don't sleep."""
    deadline = asyncio.get_running_loop().time() + 10
    while not await probe():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


ROUTES = """\
routes:
  - id: keyed
    uri: {up}
    predicates: [Path=/keyed/**]
    filters:
      # Listed before the ApiKey: the authentication still runs first, so the limiter's
      # principal key (its default) is the key's name.
      - name: RequestRateLimiter
        args:
          redis-rate-limiter.replenishRate: 1
          redis-rate-limiter.burstCapacity: 3
      - name: ApiKey
        args:
          keys-file: {keys}
  - id: basic
    uri: {up}
    predicates: [Path=/basic/**]
    filters:
      - BasicAuth={htpasswd}
"""


def write_files(tmp_path: Path, upstream: Upstream) -> tuple[Path, Path, Path]:
    keys = tmp_path / "api-keys.txt"
    keys.write_text(
        "# billing rotates its key: both valid, one name\n"
        f"billing:{sha('billing-old')}\nbilling:{sha('billing-new')}\n"
    )
    htpasswd = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    htpasswd.write_text(f"alice:{hashed.replace('$2b$', '$2y$', 1)}\n")  # as htpasswd -B
    routes = tmp_path / "routes.yml"
    routes.write_text(ROUTES.format(up=upstream.url, keys=keys, htpasswd=htpasswd))
    return routes, keys, htpasswd


@pytest.mark.slow
async def test_api_key_and_basic_auth_in_the_gateway_process(
    tmp_path: Path, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    routes, keys, _ = write_files(tmp_path, upstream)
    gateway: GatewayProcess = await asyncio.to_thread(spawn_gateway, routes, tmp_path)
    try:
        url = f"{gateway.url}/keyed/x"
        # -- ApiKey: refused without the right key, with Kong's challenge and a JSON body
        for headers in ({}, {"X-Api-Key": "guess"}, {"X-Api-Key": sha("billing-old")}):
            status, head, error = await call(session, url, headers)
            assert status == 401, headers
            assert head["WWW-Authenticate"] == 'Key realm="meshgate"'
            assert head["Content-Type"] == "application/json"
            assert error["status"] == 401 and error["path"] == "/keyed/x"
        # -- the right key passes; the key never reaches the upstream
        status, head, echo = await call(session, url, {"X-Api-Key": "billing-old"})
        assert status == 200
        assert "x-api-key" not in forwarded_names(echo)
        assert head["X-RateLimit-Burst-Capacity"] == "3"
        # -- a burst: both of billing's keys share its bucket (3, maybe one refilled)
        burst = await asyncio.gather(
            *(call(session, url, {"X-Api-Key": f"billing-{k}"}) for k in ("old", "new") * 3)
        )
        passed = [s for s, _, _ in burst].count(200)
        assert 2 <= passed <= 3, [s for s, _, _ in burst]  # 2 tokens left after the first
        assert {s for s, _, _ in burst} == {200, 429}
        # -- a key added to the file applies on SIGHUP (the route is rebuilt, the file re-read)
        status, _, _ = await call(session, url, {"X-Api-Key": "reports-key"})
        assert status == 401
        keys.write_text(keys.read_text() + f"reports:{sha('reports-key')}\n")
        gateway.signal(signal.SIGHUP)

        async def reports_pass() -> bool:
            return (await call(session, url, {"X-Api-Key": "reports-key"}))[0] == 200

        await eventually(reports_pass, "the reloaded keys file")
        status, head, _ = await call(session, url, {"X-Api-Key": "reports-key"})
        assert status == 200  # its own bucket, not billing's empty one
        # -- BasicAuth: a bcrypt user passes, Authorization is not forwarded
        basic_url = f"{gateway.url}/basic/y"
        status, _, echo = await call(session, basic_url, basic("alice", "s3cret"))
        assert status == 200
        assert "authorization" not in forwarded_names(echo)
        assert (await call(session, basic_url, basic("alice", "s3cret")))[0] == 200  # cached
        for headers in (basic("alice", "wrong"), basic("mallory", "s3cret"), {}):
            status, head, error = await call(session, basic_url, headers)
            assert status == 401, headers
            assert head["WWW-Authenticate"] == 'Basic realm="meshgate", charset="UTF-8"'
            assert error["status"] == 401
        gateway.signal(signal.SIGTERM)
        assert await asyncio.to_thread(gateway.process.wait, 20) == 0
        # -- the access log: each line says who the client was
        lines = [
            json.loads(line)
            for line in gateway.log().splitlines()
            if line.startswith("{") and '"requestId"' in line
        ]
        seen = {(e["route"], e["status"], e["principal"]) for e in lines}
        assert ("keyed", 200, "billing") in seen
        assert ("keyed", 429, "billing") in seen
        assert ("keyed", 200, "reports") in seen
        assert ("basic", 200, "alice") in seen
        assert {e["principal"] for e in lines if e["status"] == 401} == {None}
    finally:
        await asyncio.to_thread(gateway.stop)


@pytest.mark.slow
@pytest.mark.parametrize("broken", ["keys", "htpasswd"])
async def test_a_malformed_file_stops_the_start_naming_file_and_line(
    tmp_path: Path, upstream: Upstream, broken: str
) -> None:
    routes, keys, htpasswd = write_files(tmp_path, upstream)
    if broken == "keys":
        keys.write_text(f"billing:{sha('k')}\n# next\nreports {sha('r')}\n")
        expected = [f"{keys}:3: expected name:sha256-hex-of-key"]
    else:
        htpasswd.write_text(htpasswd.read_text() + "bob:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n")
        expected = [f"{htpasswd}:2: user 'bob': only bcrypt", "Apache MD5 ($apr1$)"]
    with pytest.raises(RuntimeError) as caught:
        await asyncio.to_thread(spawn_gateway, routes, tmp_path)
    message = str(caught.value)
    assert "gateway exited with 2" in message
    for text in expected:
        assert text in message


# -- API keys in Consul KV ---------------------------------------------------------------------
KV_ROUTES = """\
routes:
  - id: kv-keyed
    uri: {up}
    predicates: [Path=/**]
    filters:
      - name: ApiKey
        args:
          header: X-Key
          consul-key: meshgate/api-keys
"""

KV_KEY = "meshgate/api-keys"


async def test_a_consul_key_set_applies_changes_live(
    consul: ConsulAgent,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    upstream: Upstream,
    session: aiohttp.ClientSession,
) -> None:
    consul.kv_put(KV_KEY, f"billing:{sha('b-key')}\n")
    routes = tmp_path / "routes.yml"
    routes.write_text(textwrap.dedent(KV_ROUTES.format(up=upstream.url)))
    monkeypatch.setenv("CONSUL_HTTP_ADDR", consul.http_addr)
    running = await start_gateway(routes, discovery="consul", register_self=False, consul_wait="5s")
    try:
        gateway = running.gateway

        def status_with(key: str) -> Callable[[], Awaitable[int]]:
            async def probe() -> int:
                return (await call(session, f"{running.url}/x", {"X-Key": key}))[0]

            return probe

        async def becomes(key: str, status: int, what: str) -> None:
            probe = status_with(key)

            async def matches() -> bool:
                return await probe() == status

            await eventually(matches, what)

        await becomes("b-key", 200, "the first read of the key set")
        readiness = f"{running.management_url}/actuator/health/readiness"

        async def key_set_state() -> Any:
            async with session.get(readiness) as response:
                return (await response.json())["details"]["apiKeys"][KV_KEY]

        assert await key_set_state() == {"loaded": True, "keys": 1, "error": None}
        status, _, echo = await call(session, f"{running.url}/x", {"X-Key": "b-key"})
        assert status == 200 and "x-key" not in forwarded_names(echo)
        assert await status_with("r-key")() == 401
        # A key added in Consul applies without a reload.
        consul.kv_put(KV_KEY, f"billing:{sha('b-key')}\nreports:{sha('r-key')}\n")
        await becomes("r-key", 200, "the added key")
        # A malformed document is refused: the last good set stays.
        consul.kv_put(KV_KEY, "reports:not-a-digest\n")
        assert gateway.api_key_sets is not None
        live = gateway.api_key_sets.sets()[KV_KEY]

        async def refused() -> bool:
            return live.error is not None

        await eventually(refused, "the malformed document refused")
        assert f"consul:{KV_KEY}:1" in (live.error or "")
        state = await key_set_state()
        assert state["keys"] == 2 and f"consul:{KV_KEY}:1" in state["error"]
        assert await status_with("r-key")() == 200
        assert await status_with("b-key")() == 200
        # Deleting the key revokes every key.
        consul.kv_delete(KV_KEY)
        await becomes("b-key", 401, "the deleted key set")
        assert await status_with("r-key")() == 401
    finally:
        await running.gateway.stop()


async def test_a_consul_key_without_consul_discovery_is_a_config_error(
    tmp_path: Path, upstream: Upstream
) -> None:
    routes = tmp_path / "routes.yml"
    routes.write_text(textwrap.dedent(KV_ROUTES.format(up=upstream.url)))
    with pytest.raises(ConfigError) as caught:
        await start_gateway(routes, discovery="static")
    assert "argument 'consul-key'" in str(caught.value)
    assert "with static discovery use keys-file" in str(caught.value)
