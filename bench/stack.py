"""Everything the benchmark starts: the nginx upstream and every candidate in front of it, each
in its own process group on 127.0.0.1, stopped by pid when the run ends."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.credentials import TlsFiles
from gateway.security.tls_server import TLS12_CIPHERS

ROOT = Path(__file__).resolve().parent.parent
SCG_JAR = ROOT / "bench" / "peers" / "scg" / "target" / "scg-peer.jar"
TYPICAL_ROUTES = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    path_prefix: str = ""
    measured: bool = True
    log: Path | None = None
    # Measured only on these workloads (by name); empty: every workload that names no
    # candidates, or names this one (bench.run.runs).
    workloads: tuple[str, ...] = ()
    scheme: str = "http"
    # Sent on every request wrk makes to this candidate (a bearer token, say).
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{self.path_prefix}"

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


def _spawn(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(
        command,
        stdout=handle,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        start_new_session=True,  # its own process group: stopping it stops its workers too
    )


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    # The run's certificate comes from a CA nobody trusts; up is all this asks.
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited ({process.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2, context=unverified) as response:
                if response.status < 500:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up within {timeout}s:\n{log.read_text()[-2000:]}")


UPSTREAM_CONF = """
worker_processes 1;
daemon off;
pid {work}/upstream.pid;
error_log {work}/upstream-error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port1} backlog=4096;
    listen 127.0.0.1:{port2} backlog=4096;
    location = / {{ return 200 "hello world\\n"; }}
    location = /64k {{ alias {work}/64k.bin; }}
    location = /big {{ alias {work}/big.bin; }}
    location = /upload {{
      client_max_body_size 2m;
      client_body_buffer_size 2m;
      return 200 "ok\\n";
    }}
  }}
}}
"""

PROXY_CONF = """
worker_processes 1;
daemon off;
pid {work}/{name}.pid;
error_log {work}/{name}-error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  upstream backend {{ server 127.0.0.1:{upstream}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{port}{ssl} backlog=4096;{tls}
    client_max_body_size 2m;
    client_body_buffer_size 2m;  # keep 1 MiB uploads in memory, not in temp files
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffers 16 64k;
      proxy_buffer_size 64k;
    }}
  }}
}}
"""

# What nginx-tls adds to the proxy's server block: meshgate's own listener policy (TLS 1.2 and
# 1.3, ECDHE with AEAD ciphers for 1.2, OpenSSL's 1.3 suites), the same certificate.
PROXY_TLS = """
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers {ciphers};"""


def minimal_routes(upstream_port: int) -> str:
    return f"routes:\n  - id: upstream\n    uri: http://127.0.0.1:{upstream_port}\n"


def typical_routes(port1: int, port2: int, extra: str = "", second_lane: str = "") -> str:
    """100 routes; requests hit the last one (the worst case for route matching). ``extra``:
    one more filter on every route, after the typical two (a traffic-policy variant);
    ``second_lane``: the lane of the second instance (the first is ``stable``)."""
    second = f", metadata: {{lane: {second_lane}}}" if second_lane else ""
    lines = [
        "services:",
        "  bench:",
        f"    - {{host: 127.0.0.1, port: {port1}}}",
        f"    - {{host: 127.0.0.1, port: {port2}{second}}}",
        "routes:",
    ]
    more = f", {extra}" if extra else ""
    for i in range(TYPICAL_ROUTES):
        lines += [
            f"  - id: svc{i}",
            "    uri: lb://bench",
            f"    predicates: [Path=/svc{i}/**]",
            f"    filters: [StripPrefix=1, 'AddRequestHeader=X-Bench-Route, svc{i}'{more}]",
        ]
    return "\n".join(lines) + "\n"


@dataclass
class Stack:
    work: Path
    services: list[Service] = field(default_factory=list)
    upstream: Service | None = None
    upstream_port2: int = 0

    def start_upstream(self) -> Service:
        port1, port2 = free_port(), free_port()
        (self.work / "64k.bin").write_bytes(b"x" * 65536)
        with (self.work / "big.bin").open("wb") as big:
            big.truncate(1024**3)  # sparse: 1 GiB of zeros without writing them
        for served in ("64k.bin", "big.bin"):
            (self.work / served).chmod(0o644)
        conf = self.work / "upstream.conf"
        conf.write_text(UPSTREAM_CONF.format(work=self.work, port1=port1, port2=port2))
        log = self.work / "upstream.log"
        process = _spawn(["nginx", "-c", str(conf), "-p", str(self.work)], log)
        service = Service("upstream", port1, process, measured=False, log=log)
        wait_http(f"http://127.0.0.1:{port1}/", process, log)
        self.services.append(service)
        self.upstream, self.upstream_port2 = service, port2
        return service

    def direct(self) -> Service:
        assert self.upstream is not None
        # The ceiling: wrk straight at the upstream (its CPU is the upstream's, not a proxy's).
        return Service("direct", self.upstream.port, self.upstream.process, measured=True)

    def start_nginx_proxy(self, tls: TlsFiles | None = None) -> Service:
        """``nginx``, or with ``tls`` ``nginx-tls``: the same proxy terminating TLS."""
        assert self.upstream is not None
        port = free_port()
        name = "nginx-tls" if tls else "nginx"
        stem = "proxy-tls" if tls else "proxy"
        extra = (
            PROXY_TLS.format(cert=tls.cert_file, key=tls.key_file, ciphers=TLS12_CIPHERS)
            if tls
            else ""
        )
        conf = self.work / f"{stem}.conf"
        conf.write_text(
            PROXY_CONF.format(
                work=self.work,
                name=stem,
                port=port,
                upstream=self.upstream.port,
                ssl=" ssl" if tls else "",
                tls=extra,
            )
        )
        log = self.work / f"{stem}.log"
        process = _spawn(["nginx", "-c", str(conf), "-p", str(self.work)], log)
        scheme = "https" if tls else "http"
        return self._started(Service(name, port, process, log=log, scheme=scheme))

    def start_scg(self) -> Service:
        assert self.upstream is not None
        if not SCG_JAR.exists():
            raise RuntimeError(f"{SCG_JAR} is missing: run `make bench-peers` first")
        port = free_port()
        log = self.work / "scg.log"
        env = {"PEER_PORT": str(port), "UPSTREAM_PORT": str(self.upstream.port)}
        process = _spawn(["java", "-jar", str(SCG_JAR)], log, env)
        return self._started(Service("scg", port, process, log=log), timeout=120)

    def start_naive(self) -> Service:
        assert self.upstream is not None
        port = free_port()
        log = self.work / "naive.log"
        upstream = f"http://127.0.0.1:{self.upstream.port}"
        process = _spawn([sys.executable, "-m", "bench.naive_proxy", str(port), upstream], log)
        return self._started(Service("naive-aiohttp", port, process, log=log))

    def start_bare(self) -> Service:
        assert self.upstream is not None
        port = free_port()
        log = self.work / "bare.log"
        argv = [sys.executable, "-m", "bench.bare_proxy", str(port), str(self.upstream.port)]
        return self._started(Service("bare-httptools", port, _spawn(argv, log), log=log))

    def start_redis(self) -> Service:
        """The shared rate-limit backend for the Redis limiter variant (not measured)."""
        port = free_port()
        log = self.work / "redis.log"
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.work)]
        process = _spawn(argv, log)
        service = Service("redis", port, process, measured=False, log=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"redis-server did not start: {log.read_text()}")
        self.services.append(service)
        return service

    def start_otlp_sink(self) -> Service:
        """Where traced candidates export to: accepts every batch, measured by no one."""
        port = free_port()
        log = self.work / "otlp-sink.log"
        process = _spawn([sys.executable, "-m", "bench.otlp_sink", str(port)], log)
        service = Service("otlp-sink", port, process, measured=False, log=log)
        wait_http(f"http://127.0.0.1:{port}/", process, log)
        self.services.append(service)
        return service

    def start_meshgate(
        self,
        name: str,
        routes: str,
        workers: int,
        prefix: str = "",
        extra_env: dict[str, str] | None = None,
        tls: TlsFiles | None = None,
        tree: Path | None = None,
    ) -> Service:
        """A meshgate process; with ``tls`` its proxy port speaks HTTPS only; with ``tree``
        its packages come from there (``make mypyc``'s compiled copy) instead of the
        repository."""
        port, management = free_port(), free_port()
        config = self.work / f"{name}.yml"
        config.write_text(routes)
        log = self.work / f"{name}.log"
        env = {
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(port),
            "GATEWAY_MANAGEMENT_PORT": str(management),
            "GATEWAY_CONFIG": str(config),
            "GATEWAY_WORKERS": str(workers),
            "GATEWAY_LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }
        if tls:
            env["GATEWAY_TLS_CERT_FILE"] = str(tls.cert_file)
            env["GATEWAY_TLS_KEY_FILE"] = str(tls.key_file)
        command = [sys.executable, "-m", "gateway"]
        if tree is not None:
            # -P: the working directory (the repository, pure Python) must not come first.
            command = [sys.executable, "-P", "-m", "gateway"]
            env["PYTHONPATH"] = str(tree)
        process = _spawn(command, log, env)
        scheme = "https" if tls else "http"
        service = Service(name, port, process, path_prefix=prefix, log=log, scheme=scheme)
        wait_http(f"http://127.0.0.1:{management}/actuator/health/readiness", process, log)
        self.services.append(service)
        return service

    def start_sidecar(self, name: str, service: str) -> Service:
        """meshgate in sidecar mode (1 worker), measured on its outbound port: the app's calls
        with ``Host: <service>``, a service of one instance (the upstream) in static
        discovery. The local app it fronts inbound is the upstream too (not measured)."""
        assert self.upstream is not None
        upstream = self.upstream.port
        outbound = free_port()
        routes = f"services:\n  {service}:\n    - {{host: 127.0.0.1, port: {upstream}}}\n"
        env = {
            "GATEWAY_MODE": "sidecar",
            "GATEWAY_SIDECAR_APP": f"http://127.0.0.1:{upstream}",
            "GATEWAY_OUTBOUND_PORT": str(outbound),
            "GATEWAY_DISCOVERY": "static",  # even when the run's environment names a Consul
        }
        sidecar = self.start_meshgate(name, routes, 1, extra_env=env)
        sidecar.port = outbound
        sidecar.headers = {"Host": service}
        # Up is not enough: the hop itself must answer 200, or wrk would measure errors.
        request = urllib.request.Request(f"{sidecar.base_url}/", headers=sidecar.headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                status = response.status
        except OSError as exc:
            status = getattr(exc, "code", None) or str(exc)
        if status != 200:
            log = sidecar.log.read_text()[-2000:] if sidecar.log else ""
            raise RuntimeError(f"{name}: GET / with Host: {service} answered {status}:\n{log}")
        return sidecar

    def start_echo(self) -> Service:
        port = free_port()
        log = self.work / "echo.log"
        process = _spawn([sys.executable, "-m", "gateway.demo.echo", str(port), "sink"], log)
        service = Service("echo", port, process, measured=False, log=log)
        wait_http(f"http://127.0.0.1:{port}/", process, log)
        self.services.append(service)
        return service

    def _started(self, service: Service, timeout: float = 60) -> Service:
        assert service.log is not None
        wait_http(f"{service.base_url}/", service.process, service.log, timeout)
        self.services.append(service)
        return service

    def stop_all(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()
