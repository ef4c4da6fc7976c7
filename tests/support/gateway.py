"""Run the gateway for tests: in-process (same event loop, fast) or as a real process (signals,
workers, memory)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from gateway.app import Gateway
from gateway.plugins import Factories
from gateway.process import with_document_settings
from gateway.settings import load_settings
from tests.support.ports import free_port


@dataclass
class RunningGateway:
    gateway: Gateway

    @property
    def port(self) -> int:
        return self.gateway.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.port}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.management_port}"


async def start_gateway(
    config_file: Path | None, *, rng: random.Random | None = None, **settings: Any
) -> RunningGateway:
    """``rng``: the gateway's generator (a seed makes its draws repeatable)."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "management_port": 0,
        "config": str(config_file) if config_file else None,
        "shutdown_timeout": 5,
    }
    values.update(settings)
    found = Factories.builtin()
    # As the process does: the route file's Spring start-up settings under explicit ones.
    resolved = with_document_settings(load_settings(**values), found)
    gateway = Gateway(resolved, found, rng=rng)
    gateway.load()
    await gateway.start()
    return RunningGateway(gateway)


@dataclass
class GatewayProcess:
    process: subprocess.Popen[bytes]
    port: int
    management_port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def rss_bytes(self) -> int:
        """Resident memory of the gateway process and its children (workers)."""
        total = 0
        for pid in [self.process.pid, *_children(self.process.pid)]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        return total

    def worker_pids(self) -> list[int]:
        return _children(self.process.pid)

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def spawn_gateway(
    config_file: Path | None,
    log_dir: Path,
    document_ports: tuple[int, int] | None = None,
    /,
    **env: str,
) -> GatewayProcess:
    """Start ``python -m gateway``. Its ports come from the environment (free ones unless
    ``env`` names them) or, with ``document_ports``, from the route document (server.port and
    management.server.port, which the caller wrote there): then no GATEWAY_*PORT is set."""
    if document_ports is not None:
        port, management_port = document_ports
        ports: dict[str, str] = {}
    else:
        port = int(env.pop("GATEWAY_PORT", free_port()))
        management_port = int(env.pop("GATEWAY_MANAGEMENT_PORT", free_port()))
        ports = {"GATEWAY_PORT": str(port), "GATEWAY_MANAGEMENT_PORT": str(management_port)}
    inherited = {
        name: value
        for name, value in os.environ.items()
        if document_ports is None or name not in ("GATEWAY_PORT", "GATEWAY_MANAGEMENT_PORT")
    }
    full_env = {
        **inherited,
        "GATEWAY_HOST": "127.0.0.1",
        **ports,
        **({"GATEWAY_CONFIG": str(config_file)} if config_file else {}),
        **env,
    }
    log_path = log_dir / f"gateway-{port}.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway"], env=full_env, stdout=log_file, stderr=subprocess.STDOUT
    )
    running = GatewayProcess(process, port, management_port, log_path)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode}:\n{running.log()}")
        try:
            import urllib.request

            with urllib.request.urlopen(
                f"{running.management_url}/actuator/health/readiness", timeout=1
            ) as response:
                if response.status == 200:
                    return running
        except OSError:
            time.sleep(0.1)
    running.stop()
    raise RuntimeError(f"gateway did not become ready:\n{running.log()}")


async def get_json(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> Any:
    async with session.get(url, **kwargs) as response:
        return await response.json()
