"""``MeshDemo``: the demo mesh's processes, started against a Consul agent and (optionally) an
OTLP/HTTP trace receiver, and stopped again.

- ``billing``: ``stable-1``, ``stable-2`` and ``canary`` (Consul meta ``lane=canary``);
- ``orders``: ``stable`` and ``canary`` (a lane has to exist at every hop that is to keep it:
  the gateway's lane is the lane of the instance it picked, so a canary request that fell back
  to a stable orders would be stable traffic from there on);
- ``legacy``: ``legacy.py`` (no mesh code) behind a meshgate sidecar, which registers it;
- the gateway, routing ``/orders/**`` and ``/legacy/**`` by Consul name (``routes.yml``).

Every process is a child with its output in ``log_dir``. Synchronous: callers in an event loop
run ``start``/``stop`` in a thread.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ROUTES = HERE / "routes.yml"
BILLING = (("stable-1", None), ("stable-2", None), ("canary", "canary"))
ORDERS = (("stable", None), ("canary", "canary"))
# Expected passing instances per service before the mesh counts as up.
INSTANCES = {"billing": len(BILLING), "orders": len(ORDERS), "legacy": 1}
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
# Loopback only, so never through a proxy of the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Ports:
    """Where everything listens. ``Ports.free()`` for tests, ``Ports()`` for the demo."""

    gateway: int = 8080
    gateway_management: int = 8081
    orders: tuple[int, ...] = (9201, 9202)
    billing: tuple[int, ...] = (9301, 9302, 9303)
    legacy_app: int = 9400
    legacy_sidecar: int = 9401
    legacy_management: int = 9402
    legacy_outbound: int = 15001

    @classmethod
    def free(cls) -> Ports:
        return cls(
            free_port(),
            free_port(),
            (free_port(), free_port()),
            (free_port(), free_port(), free_port()),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        )


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


@dataclass
class MeshDemo:
    consul_addr: str  # host:port, as CONSUL_HTTP_ADDR
    log_dir: Path
    traces_url: str | None = None  # an OTLP/HTTP traces endpoint; None: no tracing
    ports: Ports = field(default_factory=Ports)
    children: dict[str, Child] = field(default_factory=dict)

    # -- addresses ------------------------------------------------------------------------------
    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def legacy_url(self) -> str:
        """The legacy app's sidecar (its inbound, proxy port)."""
        return f"http://127.0.0.1:{self.ports.legacy_sidecar}"

    def orders_url(self, name: str = "stable") -> str:
        index = [n for n, _lane in ORDERS].index(name)
        return f"http://127.0.0.1:{self.ports.orders[index]}"

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        """Start everything and wait until every instance is passing in Consul and the
        gateway is ready. On failure: stop what started and raise with the logs' tails."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_all()
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _start_all(self) -> None:
        ports = self.ports
        python = sys.executable
        for (name, lane), port in zip(BILLING, ports.billing, strict=True):
            command = [python, "-m", "examples.mesh.billing", "--port", str(port), "--name", name]
            command += ["--lane", lane] if lane else []
            self._spawn(f"billing-{name}", command, {"OTEL_SERVICE_NAME": "billing"})
        for (name, lane), port in zip(ORDERS, ports.orders, strict=True):
            command = [python, "-m", "examples.mesh.orders", "--port", str(port), "--name", name]
            command += ["--lane", lane] if lane else []
            self._spawn(f"orders-{name}", command, {"OTEL_SERVICE_NAME": "orders"})
        outbound = f"http://127.0.0.1:{ports.legacy_outbound}"
        self._spawn(
            "legacy-app",
            [python, str(HERE / "legacy.py"), "--port", str(ports.legacy_app)],
            {"HTTP_PROXY": outbound},
            tracing=False,  # it records nothing: its sidecar does
        )
        self._spawn(
            "legacy-sidecar",
            [python, "-m", "gateway"],
            {
                "GATEWAY_MODE": "sidecar",
                "GATEWAY_PORT": str(ports.legacy_sidecar),
                "GATEWAY_MANAGEMENT_PORT": str(ports.legacy_management),
                "GATEWAY_SIDECAR_APP": f"http://127.0.0.1:{ports.legacy_app}",
                "GATEWAY_SIDECAR_APP_HEALTH": "/health",
                "GATEWAY_OUTBOUND_PORT": str(ports.legacy_outbound),
                "GATEWAY_SERVICE_NAME": "legacy",
                "GATEWAY_SERVICE_ID": "legacy-1",
                "OTEL_SERVICE_NAME": "legacy-sidecar",
                **_gateway_env(),
            },
        )
        self._spawn(
            "gateway",
            [python, "-m", "gateway"],
            {
                "GATEWAY_PORT": str(ports.gateway),
                "GATEWAY_MANAGEMENT_PORT": str(ports.gateway_management),
                "GATEWAY_CONFIG": str(ROUTES),
                "GATEWAY_DISCOVERY": "consul",
                "GATEWAY_REGISTER": "false",
                "OTEL_SERVICE_NAME": "gateway",
                **_gateway_env(),
            },
        )

    def _spawn(
        self, name: str, command: list[str], extra: Mapping[str, str], *, tracing: bool = True
    ) -> None:
        env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARIABLES}
        env |= {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            "CONSUL_HTTP_ADDR": self.consul_addr,
            "GATEWAY_HOST": "127.0.0.1",
        }
        if tracing and self.traces_url is not None:
            # Spans leave within 200 ms: a person (or a test) is waiting for the trace.
            env |= {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": self.traces_url}
            env |= {"OTEL_BSP_SCHEDULE_DELAY": "200"}
        env |= extra
        log_path = self.log_dir / f"{name}.log"
        log_file = log_path.open("ab")
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        self.children[name] = Child(name, process, log_path, log_file)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = dict(INSTANCES)
        gateway_ready = False
        while time.monotonic() < deadline:
            for child in self.children.values():
                if child.process.poll() is not None:
                    raise RuntimeError(
                        f"{child.name} exited with {child.process.returncode}:\n" + child.log_tail()
                    )
            for service, count in list(pending.items()):
                if self.passing(service) >= count:
                    del pending[service]
            if not gateway_ready:
                gateway_ready = _ok(
                    f"http://127.0.0.1:{self.ports.gateway_management}/actuator/health/readiness"
                )
            if not pending and gateway_ready:
                return
            time.sleep(0.1)
        tails = "\n".join(f"--- {c.name}\n{c.log_tail(10)}" for c in self.children.values())
        raise RuntimeError(
            f"mesh not up within {timeout:g} s (waiting for {pending or 'the gateway'}):\n{tails}"
        )

    def passing(self, service: str) -> int:
        """Instances of ``service`` with every check passing, as Consul answers now."""
        url = f"http://{self.consul_addr}/v1/health/service/{service}?passing=1"
        try:
            with _OPENER.open(url, timeout=2) as response:
                return len(json.loads(response.read()))
        except OSError:
            return 0

    def kill(self, name: str) -> None:
        """SIGKILL one child (``billing-stable-1``, ...): no deregistration, no goodbye."""
        child = self.children[name]
        child.process.kill()
        child.process.wait(5)

    def stop(self) -> None:
        """SIGTERM to every child (services deregister, gateways drain), SIGKILL after 10 s."""
        for child in self.children.values():
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child in self.children.values():
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait(5)
            child.log_file.close()
        self.children.clear()


def _gateway_env() -> dict[str, str]:
    """A gateway or sidecar of the demo: quick checks and drains, a short wait for Consul."""
    return {
        "GATEWAY_CHECK_INTERVAL": "1s",
        "GATEWAY_CHECK_TIMEOUT": "1s",
        "GATEWAY_DEREGISTER_GRACE": "0s",
        "GATEWAY_SHUTDOWN_TIMEOUT": "2s",
        "GATEWAY_CONSUL_WAIT": "5s",
    }


def _ok(url: str) -> bool:
    try:
        with _OPENER.open(url, timeout=1) as response:
            return int(response.status) == 200
    except OSError:
        return False
