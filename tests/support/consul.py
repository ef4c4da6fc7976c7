"""A real Consul agent for integration tests: find (or build) the pinned binary and run it in
``-dev`` mode on free loopback ports.

The version is pinned because service discovery is tested against what Consul really answers,
and those answers (field names, check semantics, blocking-query behaviour) drift between
releases. Consul is not packaged in Debian, so when no binary is at hand it is built from source
with Go and cached per user.

``python -m tests.support.consul --ensure`` prints the binary's path, building it if needed
(``make consul`` runs it before the tests, so that the slow build never happens under a test
timeout).
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Self, TypeVar

CONSUL_VERSION = "1.14.11"

T = TypeVar("T")

CheckStatus = Literal["passing", "warning", "critical"]

# Something in Consul's dependency graph still imports launchpad.net/gocheck, a Bazaar-hosted
# path; the replace points it at the GitHub copy so that no bzr is needed.
_GO_MOD = f"""\
module consulbuild

go 1.20

replace launchpad.net/gocheck => github.com/go-check/check v0.0.0-20140225173054-eb6ee6f84d0a

require github.com/hashicorp/consul v{CONSUL_VERSION}
"""

# Imports the main package so that ``go mod tidy`` keeps Consul and its whole dependency graph.
_TOOLS_GO = """\
//go:build tools

package tools

import _ "github.com/hashicorp/consul"
"""


def cache_dir() -> Path:
    """Where the built binary lives: per user and per version, so a version bump rebuilds."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "meshgate" / f"consul-{CONSUL_VERSION}"


def consul_binary(*, build: bool = True) -> Path:
    """The pinned Consul binary: ``$CONSUL_BIN``, else a ``consul`` v1.14.11 on PATH, else the
    per-user cache, else (with ``build``) a fresh build from source into that cache.

    A ``consul`` on PATH of another version is passed over rather than used: the tests pin
    the version. ``$CONSUL_BIN`` is an explicit choice, so a wrong one is an error, not ignored.
    """
    override = os.environ.get("CONSUL_BIN")
    if override:
        path = Path(override)
        if not _is_executable(path):
            raise RuntimeError(f"CONSUL_BIN={override} is not an executable file")
        version = _binary_version(path)
        if version != CONSUL_VERSION:
            raise RuntimeError(
                f"CONSUL_BIN={override} is Consul {version or '(unknown version)'}; "
                f"the tests are pinned to {CONSUL_VERSION}"
            )
        return path

    on_path = shutil.which("consul")
    if on_path and _binary_version(Path(on_path)) == CONSUL_VERSION:
        return Path(on_path)

    cached = cache_dir() / "consul"
    if _is_executable(cached):
        return cached

    if not build:
        raise RuntimeError(
            f"Consul {CONSUL_VERSION} not found (CONSUL_BIN unset, no consul {CONSUL_VERSION} "
            f"on PATH, nothing at {cached}); run `make consul` or "
            "`python -m tests.support.consul --ensure` to build it"
        )
    return _build(cache_dir())


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _binary_version(path: Path) -> str | None:
    """The version ``consul version`` reports (first line ``Consul v1.14.11``), or None."""
    try:
        result = subprocess.run(
            [str(path), "version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = result.stdout.splitlines()[0] if result.stdout else ""
    prefix = "Consul v"
    return first[len(prefix) :].strip() if first.startswith(prefix) else None


def _find_go() -> Path:
    on_path = shutil.which("go")
    if on_path:
        return Path(on_path)
    # The official tarball's location; it is often not on PATH in non-login shells.
    fallback = Path("/usr/local/go/bin/go")
    if _is_executable(fallback):
        return fallback
    raise RuntimeError(
        f"Consul {CONSUL_VERSION} is not installed and Go is needed to build it, but there is "
        "no `go` on PATH nor /usr/local/go/bin/go; install Go (e.g. `apt-get install "
        "golang-go`), put a consul binary on PATH, or set CONSUL_BIN"
    )


def _build(cache: Path) -> Path:
    """Build Consul into ``cache``. A file lock serialises concurrent callers (parallel test
    runs, ``make -j``): the second one waits and then finds the first one's binary. The binary is
    written under a temporary name and renamed, so a half-written file is never picked up."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / "consul"
    with (cache / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_executable(target):
            return target
        go = _find_go()
        partial = cache / "consul.tmp"
        env = {**os.environ, "GOFLAGS": "-mod=mod"}
        print(
            f"building Consul {CONSUL_VERSION} with {go} into {cache} (takes minutes)...",
            file=sys.stderr,
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="meshgate-consul-build-") as workdir:
            Path(workdir, "go.mod").write_text(_GO_MOD)
            Path(workdir, "tools.go").write_text(_TOOLS_GO)
            try:
                _run_go([str(go), "mod", "tidy"], workdir, env)
                _run_go(
                    [str(go), "build", "-o", str(partial), "github.com/hashicorp/consul"],
                    workdir,
                    env,
                )
                version = _binary_version(partial)
                if version != CONSUL_VERSION:
                    raise RuntimeError(
                        f"the freshly built binary reports version {version!r}, "
                        f"expected {CONSUL_VERSION}"
                    )
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
    return target


def _run_go(command: list[str], workdir: str, env: Mapping[str, str]) -> None:
    result = subprocess.run(
        command, cwd=workdir, env=dict(env), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        tail = "\n".join(output[-40:])
        raise RuntimeError(
            f"`GOFLAGS=-mod=mod {' '.join(command)}` failed with {result.returncode}:\n{tail}"
        )


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free for both TCP and UDP (Serf gossips over both on the same
    port). All probe sockets stay open until the end so the kernel cannot hand out a port twice."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(100 * count):
            if len(ports) == count:
                break
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(tcp)
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(udp)
            try:
                udp.bind((host, port))
            except OSError:
                continue
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    if len(ports) != count:
        raise RuntimeError(f"could not find {count} ports free for both TCP and UDP")
    return ports


def wait_until(
    probe: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``probe`` until it returns something truthy, and return that. Consul applies agent
    changes to the catalog asynchronously (anti-entropy), so tests wait instead of asserting
    at once."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what or probe!r}")
        time.sleep(interval)


class ConsulError(RuntimeError):
    """A non-2xx answer from the agent; ``status`` and ``body`` are what it said."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {body.strip() or '(empty body)'}")
        self.status = status
        self.body = body


class ConsulAgent:
    """One ``consul agent -dev`` process (an in-memory single-node server) on free loopback
    ports, with small synchronous helpers over its HTTP API.

    DNS and gRPC are switched off, and the ports are chosen once, so that ``restart`` brings the
    agent back where clients expect it: that is how tests simulate an agent outage. ``-dev`` keeps
    no state across restarts, which is what such tests want to see.
    """

    def __init__(
        self,
        binary: Path | None = None,
        *,
        log_dir: Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self._binary = binary
        self._own_dir: tempfile.TemporaryDirectory[str] | None = None
        if log_dir is None:
            self._own_dir = tempfile.TemporaryDirectory(prefix="meshgate-consul-")
            log_dir = Path(self._own_dir.name)
        self.log_path = log_dir / "consul.log"
        self.startup_timeout = startup_timeout
        self._port, self._serf_lan_port, self._serf_wan_port, self._server_port = free_ports(4)
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        # Never go through an HTTP proxy from the environment: the agent is on loopback.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # -- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def http_addr(self) -> str:
        """``host:port``, the form of ``CONSUL_HTTP_ADDR`` and of Consul client settings."""
        return f"127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """The process is alive (not necessarily serving yet)."""
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        binary = self._binary or consul_binary(build=False)
        return [
            str(binary),
            "agent",
            "-dev",
            "-bind",
            "127.0.0.1",
            "-client",
            "127.0.0.1",
            "-http-port",
            str(self._port),
            "-dns-port",
            "-1",
            "-grpc-port",
            "-1",
            "-grpc-tls-port",
            "-1",
            "-serf-lan-port",
            str(self._serf_lan_port),
            "-serf-wan-port",
            str(self._serf_wan_port),
            "-server-port",
            str(self._server_port),
            "-log-level",
            "warn",
        ]

    def start(self) -> None:
        """Start the agent and wait until it has elected itself leader, i.e. until the catalog
        accepts writes. Raises with the log tail if it exits or is not ready in time."""
        if self.running:
            raise RuntimeError(f"Consul agent on {self.http_addr} is already running")
        if self._binary is None:
            self._binary = consul_binary(build=False)
        command = self.command()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Appended, so that the log keeps what happened before a restart.
        self._log_file = self.log_path.open("ab")
        self._log_file.write(f"--- {time.strftime('%H:%M:%S')} {' '.join(command)}\n".encode())
        self._log_file.flush()
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self.stop()
                raise RuntimeError(
                    f"Consul agent exited with {code} during startup:\n{self.log_tail()}"
                )
            if self.leader():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"Consul agent on {self.http_addr} elected no leader within "
            f"{self.startup_timeout:g} s:\n{self.log_tail()}"
        )

    def stop(self) -> int | None:
        """SIGINT (Consul's graceful shutdown), then SIGKILL after 10 s. Returns the exit
        status, or None if the agent was not started. Safe to call twice."""
        process, self._process = self._process, None
        code: int | None = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
            code = process.returncode
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code

    def restart(self, down_for: float = 0) -> None:
        """Stop, stay down for ``down_for`` seconds, start again on the same ports. The new
        agent has an empty catalog and KV store (``-dev`` keeps nothing)."""
        self.stop()
        if down_for > 0:
            time.sleep(down_for)
        self.start()

    def ensure_running(self) -> None:
        """Make sure a serving agent is there: start it if it is down (a test stopped it),
        restart it if the process is alive but not answering."""
        if self.running and self.leader():
            return
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the agent and remove the log directory if this object created it."""
        self.stop()
        if self._own_dir is not None:
            self._own_dir.cleanup()
            self._own_dir = None

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    # -- HTTP API --------------------------------------------------------------------------

    def request(
        self, method: str, path: str, data: bytes | None = None, *, timeout: float = 10.0
    ) -> bytes:
        """One raw HTTP request to the agent (``path`` includes ``/v1`` and any query);
        returns the body, raises :class:`ConsulError` on a non-2xx status."""
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as error:
            body = error.read().decode(errors="replace")
            error.close()
            raise ConsulError(method, path, error.code, body) from None

    def api(self, method: str, path: str, body: object | None = None) -> Any:
        """JSON in, JSON out: the parsed answer, or None for an empty body."""
        data = None if body is None else json.dumps(body).encode()
        raw = self.request(method, path, data)
        return json.loads(raw) if raw.strip() else None

    def leader(self) -> str:
        """The Raft leader's address, or "" while there is none or the agent is unreachable."""
        try:
            raw = self.request("GET", "/v1/status/leader", timeout=1.0)
            value = json.loads(raw)
        except (OSError, http.client.HTTPException, ConsulError, ValueError):
            return ""
        return value if isinstance(value, str) else ""

    def register(
        self,
        name: str,
        service_id: str,
        port: int,
        *,
        address: str = "127.0.0.1",
        tags: Iterable[str] = (),
        meta: Mapping[str, str] | None = None,
        ttl: str | None = "30s",
        initial_status: CheckStatus = "passing",
        weights: Mapping[str, int] | None = None,
    ) -> None:
        """Register a service instance with this agent. With ``ttl``, it gets a TTL check whose
        id is ``service:<service_id>`` (what ``pass_ttl``/``fail_ttl``/``warn_ttl`` drive);
        it starts as ``initial_status`` — Consul's own default would be critical."""
        definition: dict[str, Any] = {
            "Name": name,
            "ID": service_id,
            "Address": address,
            "Port": port,
            "Tags": list(tags),
        }
        if meta is not None:
            definition["Meta"] = dict(meta)
        if weights is not None:
            definition["Weights"] = dict(weights)
        if ttl is not None:
            definition["Check"] = {
                "CheckID": f"service:{service_id}",
                "Name": f"{name} TTL",
                "TTL": ttl,
                "Status": initial_status,
            }
        self.api("PUT", "/v1/agent/service/register", definition)

    def _ttl(self, verdict: str, service_id: str, note: str) -> None:
        check = _quote(f"service:{service_id}")
        query = f"?note={urllib.parse.quote(note)}" if note else ""
        self.api("PUT", f"/v1/agent/check/{verdict}/{check}{query}")

    def pass_ttl(self, service_id: str, note: str = "") -> None:
        self._ttl("pass", service_id, note)

    def warn_ttl(self, service_id: str, note: str = "") -> None:
        self._ttl("warn", service_id, note)

    def fail_ttl(self, service_id: str, note: str = "") -> None:
        self._ttl("fail", service_id, note)

    def deregister(self, service_id: str) -> None:
        self.api("PUT", f"/v1/agent/service/deregister/{_quote(service_id)}")

    def kv_put(self, key: str, value: str) -> None:
        # The value is the raw body: JSON-encoding it would store the quotes too.
        raw = self.request("PUT", f"/v1/kv/{_quote_key(key)}", value.encode())
        if json.loads(raw) is not True:
            raise ConsulError("PUT", f"/v1/kv/{key}", 200, raw.decode(errors="replace"))

    def kv_get(self, key: str) -> str | None:
        """The value under ``key``, or None if there is no such key."""
        try:
            entries = self.api("GET", f"/v1/kv/{_quote_key(key)}")
        except ConsulError as error:
            if error.status == 404:
                return None
            raise
        value = entries[0].get("Value")
        return "" if value is None else base64.b64decode(value).decode()

    def kv_delete(self, key: str, *, recurse: bool = False) -> None:
        """Delete ``key``; with ``recurse``, every key under that prefix ("" means all)."""
        self.api("DELETE", f"/v1/kv/{_quote_key(key)}" + ("?recurse=true" if recurse else ""))

    def catalog_services(self) -> dict[str, list[str]]:
        """Every service name in the catalog, with its tags."""
        services: dict[str, list[str]] = self.api("GET", "/v1/catalog/services")
        return services

    def catalog_service(self, name: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.api("GET", f"/v1/catalog/service/{_quote(name)}")
        return entries

    def health_service(self, name: str, *, passing: bool = False) -> list[dict[str, Any]]:
        """``/v1/health/service/<name>``: instances with their node and checks; ``passing``
        keeps only those whose checks all pass (what a discovery client routes to)."""
        query = "?passing=1" if passing else ""
        entries: list[dict[str, Any]] = self.api("GET", f"/v1/health/service/{_quote(name)}{query}")
        return entries

    def health_checks(self, name: str) -> list[dict[str, Any]]:
        checks: list[dict[str, Any]] = self.api("GET", f"/v1/health/checks/{_quote(name)}")
        return checks

    def reset(self, timeout: float = 10.0) -> None:
        """Back to a fresh agent without a restart: every service but Consul's own is
        deregistered (agent registrations, then anything written straight into the catalog),
        agent checks go, and the KV store is emptied. Waits until the catalog shows it."""
        for service_id in self.api("GET", "/v1/agent/services"):
            self.deregister(service_id)
        for check_id in self.api("GET", "/v1/agent/checks"):
            self.api("PUT", f"/v1/agent/check/deregister/{_quote(check_id)}")
        for name in self.catalog_services():
            if name == "consul":
                continue
            for entry in self.catalog_service(name):
                self.api(
                    "PUT",
                    "/v1/catalog/deregister",
                    {"Node": entry["Node"], "ServiceID": entry["ServiceID"]},
                )
        self.kv_delete("", recurse=True)
        wait_until(
            lambda: set(self.catalog_services()) <= {"consul"},
            timeout=timeout,
            what="the catalog to hold no service but consul",
        )


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def _quote_key(key: str) -> str:
    # KV keys are paths: their slashes stay slashes.
    return urllib.parse.quote(key, safe="/")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.consul",
        description=f"Find or build the Consul {CONSUL_VERSION} binary the integration tests use.",
    )
    parser.add_argument(
        "--ensure",
        action="store_true",
        help="print the binary's path, building it with Go first if there is none",
    )
    args = parser.parse_args(argv)
    if not args.ensure:
        parser.error("nothing to do; pass --ensure")
    try:
        path = consul_binary()
    except (RuntimeError, OSError) as error:
        print(f"consul: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
