"""What the in-process mesh client costs its caller: the same GET to the same upstream made
with a plain ``aiohttp.ClientSession`` and with ``discovery.mesh.MeshClient`` (the upstream as
the one instance of a service in a static registry, called as ``http://bench/...``), measured
as this process's CPU seconds per call, in interleaved rounds.

    python -m bench.mesh_client --port PORT [--path /] [--calls N] [--concurrency C]
        [--rounds R] [--warmup N]

Prints one JSON object. Run as its own process (``bench.run`` does), so the CPU it reads is
the client's alone: the upstream and the candidates under wrk are other processes.

The client counts its calls (``MeshMetrics``, on by default in ``from_env``). Tracing is
unsampled: no OpenTelemetry SDK is configured here, so the API's no-op tracer
provider answers (the JSON names it); the client still sends ``traceparent`` and ``baggage``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from discovery.instance import ServiceInstance
from discovery.mesh import MeshClient
from discovery.mesh.metrics import MeshMetrics
from discovery.static import StaticRegistry

SERVICE = "bench"
CLIENTS = ("aiohttp", "mesh")
TARGET = 1.25  # MeshClient: at most this many times a plain session's CPU per call

Call = Callable[[], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class ClientPlan:
    port: int
    path: str = "/"
    calls: int = 5_000  # per phase (one client, one round)
    concurrency: int = 16
    rounds: int = 5
    warmup: int = 500  # calls per client before the first round, not measured


_DEFAULTS = ClientPlan(port=0)


def parse_args(argv: Sequence[str] | None = None) -> ClientPlan:
    """The plan from the command line; a wrong value is an argument error naming it (exit 2)."""
    parser = argparse.ArgumentParser(prog="bench.mesh_client")
    parser.add_argument("--port", type=int, required=True, help="the upstream's port")
    parser.add_argument("--path", default=_DEFAULTS.path)
    parser.add_argument("--calls", type=int, default=_DEFAULTS.calls, help="per phase")
    parser.add_argument("--concurrency", type=int, default=_DEFAULTS.concurrency)
    parser.add_argument("--rounds", type=int, default=_DEFAULTS.rounds)
    parser.add_argument("--warmup", type=int, default=_DEFAULTS.warmup)
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port: expected 1-65535, got {args.port}")
    if not args.path.startswith("/"):
        parser.error(f"--path: expected a path starting with /, got {args.path!r}")
    for name in ("calls", "concurrency", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: expected at least 1, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup: expected 0 or more, got {args.warmup}")
    if args.concurrency > args.calls:
        parser.error(f"--concurrency ({args.concurrency}) is more than --calls ({args.calls})")
    return ClientPlan(args.port, args.path, args.calls, args.concurrency, args.rounds, args.warmup)


def command(plan: ClientPlan, python: str = sys.executable) -> list[str]:
    """The command line that runs ``plan`` (what ``parse_args`` reads back)."""
    return [
        python,
        "-m",
        "bench.mesh_client",
        "--port",
        str(plan.port),
        "--path",
        plan.path,
        "--calls",
        str(plan.calls),
        "--concurrency",
        str(plan.concurrency),
        "--rounds",
        str(plan.rounds),
        "--warmup",
        str(plan.warmup),
    ]


@dataclass(frozen=True, slots=True)
class Phase:
    """One client's calls in one round."""

    client: str
    round: int
    calls: int
    cpu_s: float
    wall_s: float
    errors: int

    @property
    def cpu_us_per_call(self) -> float:
        return self.cpu_s / self.calls * 1e6

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.wall_s if self.wall_s > 0 else 0.0


def order(round_no: int) -> tuple[str, ...]:
    """ABBA: which client goes first alternates, so a drift in the machine's speed over a
    round favours neither."""
    return CLIENTS if round_no % 2 == 0 else CLIENTS[::-1]


def summarise(phases: Sequence[Phase]) -> dict[str, Any]:
    """Medians per client, and the ratio mesh ÷ aiohttp as the median of each round's own
    ratio (the two phases of a round ran back to back, on the same machine state)."""
    out: dict[str, Any] = {}
    for client in CLIENTS:
        mine = [p for p in phases if p.client == client]
        if not mine:
            raise ValueError(f"no phase of {client!r} measured")
        out[client] = {
            "cpu_us_per_call": statistics.median(p.cpu_us_per_call for p in mine),
            "calls_per_s": statistics.median(p.calls_per_s for p in mine),
            "errors": sum(p.errors for p in mine),
        }
    rounds = sorted({p.round for p in phases})
    paired = []
    for round_no in rounds:
        by_client = {p.client: p for p in phases if p.round == round_no}
        if all(c in by_client for c in CLIENTS):
            plain, mesh = by_client["aiohttp"], by_client["mesh"]
            paired.append(
                (
                    mesh.cpu_us_per_call / plain.cpu_us_per_call,
                    mesh.calls_per_s / plain.calls_per_s if plain.calls_per_s else 0.0,
                )
            )
    out["cpu_ratio"] = statistics.median(r for r, _ in paired) if paired else None
    out["rate_ratio"] = statistics.median(r for _, r in paired) if paired else None
    out["target"] = TARGET
    return out


async def drive(
    call: Call,
    calls: int,
    concurrency: int,
    cpu_clock: Callable[[], float] = time.process_time,
    wall_clock: Callable[[], float] = time.perf_counter,
) -> tuple[float, float, int]:
    """``calls`` calls from ``concurrency`` tasks; (CPU seconds, wall seconds, non-200s)."""
    remaining = calls
    errors = 0

    async def worker() -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            if await call() != 200:
                errors += 1

    cpu, wall = cpu_clock(), wall_clock()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return cpu_clock() - cpu, wall_clock() - wall, errors


def _tracer_provider() -> str:
    try:
        from opentelemetry import trace
    except ImportError:
        return "none (opentelemetry not installed)"
    return type(trace.get_tracer_provider()).__name__


async def run(plan: ClientPlan) -> dict[str, Any]:
    instance = ServiceInstance(SERVICE, f"{SERVICE}-1", "127.0.0.1", plan.port)
    registry = StaticRegistry({SERVICE: [instance]})
    plain_url = f"http://127.0.0.1:{plan.port}{plan.path}"
    mesh_url = f"http://{SERVICE}{plan.path}"
    # Both sessions are aiohttp's defaults (a keep-alive pool of 100): the difference is the
    # mesh client's own work per call.
    async with (
        aiohttp.ClientSession() as session,
        # Counting on, as MeshClient.from_env has it by default.
        MeshClient(registry, rng=random.Random(1), metrics=MeshMetrics()) as mesh,
    ):

        async def plain() -> int:
            async with session.get(plain_url) as resp:
                await resp.read()
                return resp.status

        async def meshed() -> int:
            async with mesh.get(mesh_url) as resp:
                await resp.read()
                return resp.status

        calls: dict[str, Call] = {"aiohttp": plain, "mesh": meshed}
        if mesh.service_of(mesh_url) != SERVICE:
            raise RuntimeError(f"{mesh_url} does not go to the service {SERVICE!r}")
        for client in CLIENTS:
            if plan.warmup:
                await drive(calls[client], plan.warmup, min(plan.concurrency, plan.warmup))
        phases: list[Phase] = []
        for round_no in range(plan.rounds):
            for client in order(round_no):
                gc.collect()  # neither phase pays for the other's garbage
                cpu, wall, errors = await drive(calls[client], plan.calls, plan.concurrency)
                phases.append(Phase(client, round_no, plan.calls, cpu, wall, errors))
    return {
        "plan": asdict(plan),
        "tracer_provider": _tracer_provider(),
        "phases": [{**asdict(p), "cpu_us_per_call": p.cpu_us_per_call} for p in phases],
        **summarise(phases),
    }


def main(argv: Sequence[str] | None = None) -> int:
    plan = parse_args(argv)
    print(json.dumps(asyncio.run(run(plan))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
