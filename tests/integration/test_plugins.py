"""Third-party plugins through real entry points: the example plugin (tests/plugins/) installed
into the venv with pip, a gateway process proxying through its filters and predicate in both
config forms, the actuator listing them, ``meshgate validate`` locating a bad argument, and a
plugin that shadows a built-in stopping start-up."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.plugins.wheel import build_wheel
from tests.support.gateway import get_json, spawn_gateway
from tests.support.ports import free_port
from tests.support.upstream import Upstream

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
EXAMPLE = "meshgate-example-plugin"


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _meshgate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )


@pytest.fixture(scope="module")
def example_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The example plugin installed into this venv for the module's tests, then uninstalled."""
    # A run killed before its teardown leaves it installed: start from a clean venv either way.
    _pip("uninstall", "--yes", EXAMPLE)
    wheel = build_wheel(PLUGINS / "meshgate_example_plugin", tmp_path_factory.mktemp("wheels"))
    installed = _pip("install", "--no-deps", "--no-index", str(wheel))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    try:
        yield
    finally:
        removed = _pip("uninstall", "--yes", EXAMPLE)
        assert removed.returncode == 0, removed.stdout + removed.stderr


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def _routes(tmp_path: Path, upstream: Upstream) -> Path:
    return _write(
        tmp_path / "routes.yml",
        f"""
        routes:
          - id: short
            uri: {upstream.url}
            predicates:
              - Path=/short/**
              - HeaderPrefix=X-Tenant, acme-
            filters:
              - AddRequestTimestamp=X-Request-Start, us
              - InjectDelay=20ms
          - id: expanded
            uri: {upstream.url}
            predicates:
              - name: Path
                args: {{patterns.0: /expanded/**}}
              - name: HeaderPrefix
                args: {{header: X-Tenant, prefix: acme-}}
            filters:
              - name: AddRequestTimestamp
                args: {{name: X-Received-At}}
              - name: InjectDelay
                args: {{delay: 5ms}}
        """,
    )


def _header(echoed: dict[str, Any], name: str) -> str | None:
    """One header as the upstream received it (None when it did not)."""
    values = [v for k, v in echoed["headers"] if k.lower() == name.lower()]
    assert len(values) <= 1, values
    return values[0] if values else None


def _stamp(value: str | None, scale: float, before: float, after: float) -> None:
    """``t=<epoch in 1/scale s>`` taken while the request was in flight."""
    assert value is not None
    assert value.startswith("t="), value
    assert int(before * scale) <= int(value[2:]) <= after * scale + 1, (value, before, after)


async def test_plugin_filters_and_predicate_run_in_both_forms(
    example_plugin: None, upstream: Upstream, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    gateway = spawn_gateway(_routes(tmp_path, upstream), tmp_path)
    try:
        before = time.time()
        async with session.get(f"{gateway.url}/short/a", headers={"X-Tenant": "acme-1"}) as resp:
            assert resp.status == 200
            echoed = await resp.json()
            assert resp.headers["X-Injected-Delay"] == "20ms"
        _stamp(_header(echoed, "X-Request-Start"), 1e6, before, time.time())
        assert echoed["path"] == "/short/a"

        before = time.time()
        async with session.get(f"{gateway.url}/expanded/b", headers={"X-Tenant": "acme-2"}) as r:
            assert r.status == 200
            echoed = await r.json()
            assert r.headers["X-Injected-Delay"] == "5ms"
        _stamp(_header(echoed, "X-Received-At"), 1e3, before, time.time())
        assert _header(echoed, "X-Request-Start") is None

        # The plugin's predicate decides: another tenant matches no route.
        async with session.get(f"{gateway.url}/short/a", headers={"X-Tenant": "other"}) as resp:
            assert resp.status == 404

        base = f"{gateway.management_url}/actuator/gateway"
        # SCG's keys are "[<Class>@<identity hash> configClass = <Config>]".
        route_filters = {k.split("@")[0] for k in await get_json(session, f"{base}/routefilters")}
        assert "[AddRequestTimestampGatewayFilterFactory" in route_filters
        assert "[InjectDelayGatewayFilterFactory" in route_filters
        assert "[AddRequestHeaderGatewayFilterFactory" in route_filters  # built-ins stay
        route_predicates = await get_json(session, f"{base}/routepredicates")
        assert any(k.startswith("[HeaderPrefixRoutePredicateFactory@") for k in route_predicates)
        route = await get_json(session, f"{base}/routes/short")
        assert "Header: X-Tenant prefix=acme-" in route["predicate"]
        assert route["filters"] == [
            "[[AddRequestTimestamp name = 'X-Request-Start', unit = 'us'], order = 1]",
            "[[InjectDelay delay = 20ms], order = 2]",
        ]
    finally:
        gateway.stop()
    log = gateway.log()
    assert "loaded filter AddRequestTimestamp from meshgate-example-plugin 0.1.0" in log


def test_validate_knows_plugins_and_locates_their_errors(
    example_plugin: None, tmp_path: Path
) -> None:
    good = _write(
        tmp_path / "good.yml",
        """
        routes:
          - id: ok
            uri: http://127.0.0.1:9
            predicates:
              - HeaderPrefix=X-Tenant, acme-
            filters: [AddRequestTimestamp]
        """,
    )
    result = _meshgate("validate", str(good))
    assert result.returncode == 0, result.stderr
    assert f"{good}: OK (1 routes" in result.stdout

    bad = _write(
        tmp_path / "bad.yml",
        """
        routes:
          - id: x
            uri: http://127.0.0.1:9
            filters:
              - AddRequestTimestamp=X-Request-Start, minutes
              - name: InjectDelay
                args: {delay: 1m}
              - AddRequestTimestmp=X-Request-Start
        """,
    )
    result = _meshgate("validate", str(bad))
    assert result.returncode == 2
    # Every mistake, each at its place (in the validator's order: unknown names first).
    lines = result.stderr.splitlines()
    assert lines[-1] == f"{bad}: 3 error(s)"
    where = f"{bad}: routes[0] (x)"
    assert (
        f"{where} filters[0] (AddRequestTimestamp): argument 'unit': "
        "expected one of s, ms, us, got 'minutes'"
    ) in lines
    assert (
        f"{where} filters[1] (InjectDelay): argument 'delay': must be between 0 and 10s, got '1m'"
    ) in lines
    unknown = (
        f"{where} filters[2] (AddRequestTimestmp): unknown filter 'AddRequestTimestmp' "
        "(did you mean AddRequestTimestamp"
    )
    assert any(line.startswith(unknown) for line in lines), lines


SHADOW_ERROR = (
    "entry point meshgate.filters:AddRequestHeader (meshgate_shadow_plugin:ADD_REQUEST_HEADER"
    " from meshgate-shadow-plugin 0.1.0): filter name 'AddRequestHeader' clashes with the "
    "built-in filter 'AddRequestHeader'"
)


@pytest.fixture
def shadow_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python also sees the shadowing plugin, and a route file.

    The plugin is installed into a directory of its own on this environment's PYTHONPATH, not
    into the shared venv: while there, it would stop every other gateway started from it."""
    wheel = build_wheel(PLUGINS / "meshgate_shadow_plugin", tmp_path)
    site = tmp_path / "site"
    installed = _pip("install", "--no-deps", "--no-index", "--target", str(site), str(wheel))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    routes = _write(
        tmp_path / "routes.yml",
        """
        routes:
          - id: r
            uri: http://127.0.0.1:9
            filters: [AddRequestHeader=X-A, b]
        """,
    )
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
        "GATEWAY_CONFIG": str(routes),
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(free_port()),
        "GATEWAY_MANAGEMENT_PORT": str(free_port()),
    }


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_plugin_shadowing_a_builtin_stops_start_up(
    shadow_env: dict[str, str], workers: str
) -> None:
    started = _meshgate(env={**shadow_env, "GATEWAY_WORKERS": workers})
    assert started.returncode == 2, started.stdout + started.stderr
    assert SHADOW_ERROR in started.stderr


def test_a_plugin_shadowing_a_builtin_fails_validation(shadow_env: dict[str, str]) -> None:
    validated = _meshgate("validate", shadow_env["GATEWAY_CONFIG"], env=shadow_env)
    assert validated.returncode == 2
    [line] = validated.stderr.splitlines()
    assert line.startswith(SHADOW_ERROR)
