"""``make bench`` / ``make bench-quick``: every candidate in front of one nginx upstream, measured
in the same run with interleaved rounds, reported as ratios.

    python -m bench.run [--quick] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import layers, mesh_client, micro, report
from bench.credentials import bearer_token, server_tls
from bench.mypyc_build import TREE as MYPYC_TREE
from bench.procs import CpuMeter, peak_rss_bytes, rss_bytes, tree
from bench.stack import ROOT, Service, Stack, minimal_routes, typical_routes
from bench.wrk import WrkResult, run_wrk

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    path: str
    connections: int
    script: str | None = None
    # Sent on every request, with the candidate's own (``Service.headers``).
    headers: tuple[tuple[str, str], ...] = ()
    # Measured only for these candidates (by name) and those that name this workload in
    # ``Service.workloads``; empty: for every candidate that doesn't restrict itself.
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    rounds: int
    duration_s: float
    warmup_s: float
    scg_warmup: tuple[float, ...]
    workloads: tuple[Workload, ...]
    transfer_bytes: int
    idle_connections: int = 10_000
    # The mesh client against a plain aiohttp session (bench.mesh_client): calls per client
    # per round, and rounds.
    client_calls: int = 20_000
    client_rounds: int = 5


SMALL_50 = Workload("small c=50", "/", 50)
SMALL_200 = Workload("small c=200", "/", 200)
BODY_64K = Workload("64 KiB c=50", "/64k", 50)
UPLOAD_1M = Workload("1 MiB POST c=50", "/upload", 50, "upload.lua")
# Every request on a new connection (the client asks the server to close after the response):
# over TLS, a full handshake each. Only the TLS candidates and their plain counterparts.
NEW_CONN = Workload(
    "small c=50 new-conn",
    "/",
    50,
    headers=(("Connection", "close"),),
    candidates=("nginx", "meshgate-1w-minimal"),
)

# The sidecar hop's own latency, without queueing: one request at a time (at c=50 every hop
# runs flat out, and its latency is mostly the queue in front of it). Only the hop and the
# two it is compared with.
SIDECAR = "meshgate-sidecar-outbound"
SMALL_1 = Workload("small c=1", "/", 1, candidates=("direct", "nginx", SIDECAR))

WORKLOADS = {
    "small50": SMALL_50,
    "small1": SMALL_1,
    "small200": SMALL_200,
    "64k": BODY_64K,
    "upload": UPLOAD_1M,
    "newconn": NEW_CONN,
}

FULL = Plan(
    3, 10, 3, (20, 20), (SMALL_50, SMALL_200, BODY_64K, UPLOAD_1M, NEW_CONN, SMALL_1), 1024**3
)
QUICK = Plan(1, 3, 1, (8,), (SMALL_50, BODY_64K, NEW_CONN, SMALL_1), 256 * 1024**2, 2_000, 2_000, 3)

UPLOAD_SCRIPT = """
wrk.method = "POST"
wrk.body = string.rep("u", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
"""


@dataclass
class Measurement:
    candidate: str
    workload: str
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_us_per_request: float | None


def runs(service: Service, workload: Workload) -> bool:
    """Whether ``service`` is measured on ``workload``: a candidate that names its workloads
    runs those; any other, every workload that names no candidates or names it."""
    if service.workloads:
        return workload.name in service.workloads
    return not workload.candidates or service.name in workload.candidates


def request_headers(service: Service, workload: Workload) -> dict[str, str]:
    return {**dict(workload.headers), **service.headers}


def _script(workload: Workload, work: Path) -> Path | None:
    if not workload.script:
        return None
    script = work / workload.script
    script.write_text(UPLOAD_SCRIPT)
    return script


def measure(service: Service, workload: Workload, plan: Plan, work: Path) -> Measurement:
    script = _script(workload, work)
    meter = CpuMeter(service.process.pid)
    meter.start()
    result: WrkResult = run_wrk(
        service.base_url + workload.path,
        connections=workload.connections,
        duration_s=plan.duration_s,
        script=script,
        headers=request_headers(service, workload),
    )
    cpu = meter.stop()
    proxied = service.name != "direct"
    return Measurement(
        candidate=service.name,
        workload=workload.name,
        round=0,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        requests=result.requests,
        errors=result.errors,
        cpu_us_per_request=(cpu / result.requests * 1e6) if proxied and result.requests else None,
    )


def warm_up(service: Service, plan: Plan, work: Path) -> None:
    durations = plan.scg_warmup if service.name == "scg" else (plan.warmup_s,)
    workloads = [workload for workload in plan.workloads if runs(service, workload)]
    for seconds in durations:
        for workload in workloads:
            run_wrk(
                service.base_url + workload.path,
                connections=workload.connections,
                duration_s=max(1.0, seconds / len(workloads)),
                script=_script(workload, work),
                headers=request_headers(service, workload),
            )


async def _transfer(gateway: Service, size: int) -> dict[str, float]:
    """Stream ``size`` bytes up and down through meshgate, sampling its RSS."""
    import aiohttp

    pids = tree(gateway.process.pid)
    baseline = rss_bytes(pids)
    peak = baseline
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_bytes(pids))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    block = b"u" * (1024 * 1024)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(size // len(block)):
            yield block

    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        started = time.monotonic()
        async with session.post(f"{gateway.base_url}/sink", data=body()) as resp:
            received = (await resp.json())["received"]
        upload_s = time.monotonic() - started
        started = time.monotonic()
        got = 0
        async with session.get(f"{gateway.base_url}/bytes/{size}") as resp:
            async for piece in resp.content.iter_chunked(1024 * 1024):
                got += len(piece)
        download_s = time.monotonic() - started
    stop.set()
    await sampler
    if received != size or got != size:
        raise RuntimeError(f"transfer incomplete: up {received}, down {got} of {size}")
    return {
        "bytes": size,
        "upload_MiB_s": size / upload_s / 1024**2,
        "download_MiB_s": size / download_s / 1024**2,
        "rss_growth_MiB": (peak - baseline) / 1024**2,
    }


def idle_connections(gateway: Service, count: int) -> dict[str, float]:
    """RSS cost of ``count`` idle keep-alive client connections (each served one request)."""
    import resource
    import socket

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    count = min(count, hard - 200)
    pids = tree(gateway.process.pid)
    before = rss_bytes(pids)
    request = b"GET / HTTP/1.1\r\nHost: idle\r\n\r\n"
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", gateway.port))
            sock.sendall(request)
            received = b""
            while b"\r\n\r\n" not in received:
                received += sock.recv(4096)
            sockets.append(sock)
        time.sleep(1.0)
        after = rss_bytes(pids)
    finally:
        for sock in sockets:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    growth = after - before
    return {
        "connections": count,
        "rss_growth_MiB": growth / 1024**2,
        "KiB_per_connection": growth / 1024 / count,
    }


def summarise(measurements: list[Measurement]) -> list[dict[str, object]]:
    """Medians per (workload, candidate), in the order they were measured."""
    rows: list[dict[str, object]] = []
    keys = list(dict.fromkeys((m.workload, m.candidate) for m in measurements))
    for workload, candidate in keys:
        runs = [m for m in measurements if m.workload == workload and m.candidate == candidate]
        cpu = [m.cpu_us_per_request for m in runs if m.cpu_us_per_request is not None]
        rows.append(
            {
                "workload": workload,
                "candidate": candidate,
                "rps": statistics.median(m.rps for m in runs),
                "rps_min": min(m.rps for m in runs),
                "rps_max": max(m.rps for m in runs),
                "p50_ms": statistics.median(m.p50_ms for m in runs),
                "p99_ms": statistics.median(m.p99_ms for m in runs),
                "cpu_us": statistics.median(cpu) if cpu else None,
                "errors": sum(m.errors for m in runs),
            }
        )
    return rows


# The price of observability, against `typical` with all of it off (small body, c=50 only):
# metrics + access log are meshgate's defaults; tracing samples 10 % or 100 % into a sink
# (the exporter process's CPU counts: it is in the gateway's process tree).
OBSERVABILITY_VARIANTS: dict[str, dict[str, str]] = {
    "meshgate-1w-typical-plain": {
        "OTEL_SDK_DISABLED": "true",
        "GATEWAY_METRICS": "false",
        "GATEWAY_ACCESS_LOG": "false",
    },
    "meshgate-1w-typical-trace10": {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    },
    "meshgate-1w-typical-trace100": {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
    # The same two through the SDK's batch processor on a thread, not the exporter process.
    "meshgate-1w-typical-trace10-thread": {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
        "GATEWAY_TRACING_EXPORTER": "thread",
    },
    "meshgate-1w-typical-trace100-thread": {
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "GATEWAY_TRACING_EXPORTER": "thread",
    },
    # Without the dashboard's live numbers (the default keeps them): their price.
    "meshgate-1w-typical-nodashboard": {"GATEWAY_DASHBOARD": "false"},
}


def observability_candidates(
    stack: Stack, wanted: Callable[[str], bool], port1: int, port2: int
) -> list[Service]:
    chosen = [name for name in OBSERVABILITY_VARIANTS if wanted(name)]
    if not chosen:
        return []
    sink = stack.start_otlp_sink()
    out = []
    for name in chosen:
        env = dict(OBSERVABILITY_VARIANTS[name])
        if "trace" in name:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink.port}"
        service = stack.start_meshgate(
            name, typical_routes(port1, port2), 1, prefix="/svc99", extra_env=env
        )
        service.workloads = (SMALL_50.name,)
        out.append(service)
    return out


# The request path compiled with mypyc (``make mypyc``: build/mypyc), beside the pure-Python
# candidates of the same configuration in the same run.
COMPILED = ("meshgate-1w-minimal-mypyc", "meshgate-1w-typical-mypyc")


def compiled_candidates(
    stack: Stack, wanted: Callable[[str], bool], port1: int, port2: int
) -> list[Service]:
    chosen = [name for name in COMPILED if wanted(name)]
    if not chosen:
        return []
    if not any(MYPYC_TREE.glob("gateway/engine/server*.so")):
        print(f"skipping {', '.join(chosen)}: no compiled tree (make mypyc)", flush=True)
        return []
    out = []
    for name in chosen:
        if "typical" in name:
            routes, prefix = typical_routes(port1, port2), "/svc99"
        else:
            routes, prefix = minimal_routes(port1), ""
        out.append(stack.start_meshgate(name, routes, 1, prefix=prefix, tree=MYPYC_TREE))
    return out


# The price of each traffic policy (issue #14), against `typical` without it (small body, c=50
# only): one more filter on every route. The limiters' rate is far above what wrk can send, so
# every request is admitted and pays the full check; the mirror copies every request to the
# second upstream port.
LIMIT = (
    "{name: RequestRateLimiter, args: {redis-rate-limiter.replenishRate: 100000000, "
    "redis-rate-limiter.burstCapacity: 100000000, key-resolver: route}}"
)
TRAFFIC_VARIANTS: dict[str, str] = {
    "meshgate-1w-typical-lane": "'LaneSplit=canary, 20'",
    "meshgate-1w-typical-limit-local": LIMIT,
    "meshgate-1w-typical-limit-redis": LIMIT,
    "meshgate-1w-typical-mirror": "'Mirror=http://127.0.0.1:PORT2, 100'",
}


def traffic_candidates(
    stack: Stack, wanted: Callable[[str], bool], port1: int, port2: int
) -> list[Service]:
    out = []
    for name, extra in TRAFFIC_VARIANTS.items():
        if not wanted(name):
            continue
        env: dict[str, str] = {}
        if name.endswith("limit-redis"):
            env["GATEWAY_REDIS_URL"] = f"redis://127.0.0.1:{stack.start_redis().port}/0"
        routes = typical_routes(
            port1, port2, extra.replace("PORT2", str(port2)), "canary" if "lane" in name else ""
        )
        service = stack.start_meshgate(name, routes, 1, prefix="/svc99", extra_env=env)
        service.workloads = (SMALL_50.name,)
        out.append(service)
    return out


# The price of security (issue #15). TLS termination: each TLS candidate against its plain
# self (nginx-tls against nginx, with the same listener policy and certificate), on keep-alive
# connections (small and 64 KiB) and on a new connection per request. JwtAuth: `typical` with
# one more filter on every route, RS256 against a configured public key, every request
# carrying the same valid token.
TLS_WORKLOADS = (SMALL_50.name, BODY_64K.name, NEW_CONN.name)
TLS_CANDIDATES: dict[str, tuple[str, ...]] = {
    "nginx-tls": TLS_WORKLOADS,
    "meshgate-1w-minimal-tls": TLS_WORKLOADS,
    "meshgate-1w-typical-tls": (SMALL_50.name,),
}
JWT_VARIANT = "meshgate-1w-typical-jwt"
POLICY_VARIANT = "meshgate-1w-typical-jwt-limit-lane"
JWT_FILTER = "{{name: JwtAuth, args: {{public-key-file: '{key}', algorithms: [RS256]}}}}"


def security_candidates(
    stack: Stack, wanted: Callable[[str], bool], port1: int, port2: int, work: Path
) -> list[Service]:
    out: list[Service] = []
    chosen = [name for name in TLS_CANDIDATES if wanted(name)]
    tls = server_tls(work) if chosen else None
    for name in chosen:
        if name == "nginx-tls":
            service = stack.start_nginx_proxy(tls)
        elif name == "meshgate-1w-minimal-tls":
            service = stack.start_meshgate(name, minimal_routes(port1), 1, tls=tls)
        else:
            routes = typical_routes(port1, port2)
            service = stack.start_meshgate(name, routes, 1, prefix="/svc99", tls=tls)
        service.workloads = TLS_CANDIDATES[name]
        out.append(service)
    for name in (JWT_VARIANT, POLICY_VARIANT):
        if not wanted(name):
            continue
        token = bearer_token(work, time.time())
        extra = JWT_FILTER.format(key=token.public_key_file)
        lane = ""
        if name == POLICY_VARIANT:
            # Issue #17's third row: typical with every request authenticated, rate-limited
            # (locally) and given a lane.
            extra = f"{extra}, {LIMIT}, 'LaneSplit=canary, 20'"
            lane = "canary"
        routes = typical_routes(port1, port2, extra, lane)
        service = stack.start_meshgate(name, routes, 1, prefix="/svc99")
        service.workloads = (SMALL_50.name,)
        service.headers = token.headers
        out.append(service)
    return out


# East-west (issue #16). The sidecar hop: meshgate in sidecar mode taking the app's calls on
# its outbound port (`Host: bench`) to the upstream, against `direct` and against `nginx`,
# whose proxy_pass over keep-alive connections to the upstream is the same hop an nginx
# sidecar makes (small body, at c=50 and at c=1). The mesh client: not a wrk candidate but a
# client process of its own (bench.mesh_client), selected by its name like one.
SIDECAR_SERVICE = "bench"
MESH_CLIENT = "mesh-client"
CLIENT_CONCURRENCY = 16
CLIENT_TIMEOUT_S = 900.0


def eastwest_candidates(stack: Stack, wanted: Callable[[str], bool]) -> list[Service]:
    if not wanted(SIDECAR):
        return []
    service = stack.start_sidecar(SIDECAR, SIDECAR_SERVICE)
    service.workloads = (SMALL_50.name, SMALL_1.name)
    return [service]


def client_plan(plan: Plan, upstream_port: int) -> mesh_client.ClientPlan:
    calls = plan.client_calls
    return mesh_client.ClientPlan(
        port=upstream_port,
        path=SMALL_50.path,
        calls=calls,
        concurrency=min(CLIENT_CONCURRENCY, calls),
        rounds=plan.client_rounds,
        warmup=min(1_000, calls // 4),
    )


def run_mesh_client(plan: mesh_client.ClientPlan) -> dict[str, Any]:
    """The client benchmark's JSON, or ``{"error": ...}``: a failure there must not cost the
    run everything else it measured."""
    # No OTEL_* reaches it: tracing stays the API's no-op whatever the run's environment says.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    try:
        done = subprocess.run(
            mesh_client.command(plan),
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT_S,
            cwd=ROOT,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"bench.mesh_client did not finish within {CLIENT_TIMEOUT_S:g} s"}
    if done.returncode != 0:
        return {"error": f"bench.mesh_client exited {done.returncode}: {done.stderr[-1000:]}"}
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        return {"error": f"bench.mesh_client printed no JSON: {done.stdout[-500:]!r}"}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--quick", action="store_true", help="one short round: a smoke run")
    parser.add_argument("--only", default="", help="comma-separated candidate names")
    parser.add_argument("--no-append", action="store_true", help="don't append to RESULTS.md")
    parser.add_argument(
        "--workloads", default="", help=f"comma-separated subset of: {', '.join(WORKLOADS)}"
    )
    parser.add_argument("--rounds", type=int, default=0, help="override the plan's rounds")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.rounds:
        plan = replace(plan, rounds=args.rounds)
    if args.workloads:
        chosen = tuple(WORKLOADS[name] for name in args.workloads.split(","))
        plan = replace(plan, workloads=chosen)
    only = {name for name in args.only.split(",") if name}
    work = Path(tempfile.mkdtemp(prefix="meshgate-bench-"))
    work.chmod(0o755)  # nginx workers run unprivileged and must read the files served from here
    stack = Stack(work)
    # A SIGTERM (a CI timeout, `kill`) must still stop every server the run started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = datetime.now(UTC)
    try:
        upstream = stack.start_upstream()
        port2 = stack.upstream_port2

        def wanted(name: str) -> bool:
            return not only or name in only

        candidates: list[Service] = []
        if wanted("direct"):
            candidates.append(stack.direct())
        if wanted("nginx"):
            candidates.append(stack.start_nginx_proxy())
        if wanted("scg"):
            candidates.append(stack.start_scg())
        if wanted("naive-aiohttp"):
            candidates.append(stack.start_naive())
        if wanted("bare-httptools"):
            candidates.append(stack.start_bare())
        for workers in (1, 2):
            name = f"meshgate-{workers}w-minimal"
            if wanted(name):
                candidates.append(
                    stack.start_meshgate(name, minimal_routes(upstream.port), workers)
                )
            name = f"meshgate-{workers}w-typical"
            if wanted(name):
                routes = typical_routes(upstream.port, port2)
                candidates.append(stack.start_meshgate(name, routes, workers, prefix="/svc99"))
        candidates += observability_candidates(stack, wanted, upstream.port, port2)
        candidates += traffic_candidates(stack, wanted, upstream.port, port2)
        candidates += security_candidates(stack, wanted, upstream.port, port2, work)
        candidates += eastwest_candidates(stack, wanted)
        candidates += compiled_candidates(stack, wanted, upstream.port, port2)
        print(f"candidates: {', '.join(c.name for c in candidates)}", flush=True)
        for service in candidates:
            print(f"warming up {service.name}", flush=True)
            warm_up(service, plan, work)
        measurements: list[Measurement] = []
        for workload in plan.workloads:
            for round_no in range(plan.rounds):
                for service in candidates:  # interleaved: A B C ... A B C ...
                    if not runs(service, workload):
                        continue
                    m = measure(service, workload, plan, work)
                    m.round = round_no
                    measurements.append(m)
                    cpu = f"{m.cpu_us_per_request:.1f} µs" if m.cpu_us_per_request else "-"
                    print(
                        f"  {workload.name:19} r{round_no} {service.name:22} "
                        f"{m.rps:10.0f} req/s  p99 {m.p99_ms:7.2f} ms  cpu {cpu}",
                        flush=True,
                    )
        peaks = {
            s.name: peak_rss_bytes(tree(s.process.pid)) for s in candidates if s.name != "direct"
        }
        client: dict[str, Any] = {}
        if wanted(MESH_CLIENT):
            for_client = client_plan(plan, upstream.port)
            print(
                f"mesh client vs aiohttp: {for_client.rounds} rounds of {for_client.calls} calls",
                flush=True,
            )
            client = run_mesh_client(for_client)
            print(f"  {report.mesh_client_summary(client)}", flush=True)
        transfers: dict[str, float] = {}
        idle: dict[str, float] = {}
        if wanted("meshgate-1w-minimal") or not only:
            echo = stack.start_echo()
            sink = stack.start_meshgate("meshgate-transfer", minimal_routes(echo.port), 1)
            print(f"streaming {plan.transfer_bytes / 1024**3:g} GiB each way", flush=True)
            transfers = asyncio.run(_transfer(sink, plan.transfer_bytes))
            print(f"opening {plan.idle_connections} idle keep-alive connections", flush=True)
            idle = idle_connections(sink, plan.idle_connections)
        layer_costs = [asdict(cost) for cost in layers.measure()]
        micro_results = [asdict(r) for r in micro.run_all()]
    finally:
        stack.stop_all()
    summary = summarise(measurements)
    result = {
        "started": started.isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "plan": asdict(plan),
        "measurements": [asdict(m) for m in measurements],
        "summary": summary,
        "peak_rss_bytes": peaks,
        "transfer": transfers,
        "idle_connections": idle,
        "mesh_client": client,
        "layers": layer_costs,
        "micro": micro_results,
    }
    RESULTS.mkdir(exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    json_path = RESULTS / f"{stamp}.json"
    json_path.write_text(json.dumps(result, indent=2))
    chart = report.chart(result, RESULTS / f"{stamp}.png")
    table = report.markdown(result, chart)
    print(table)
    if not args.no_append:
        report.append(table)
    print(f"results: {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
