"""The gateway's own CPU per proxied request, in-process and without wrk: one worker (uvloop,
tuned GC, access log off, as the benchmark runs it) in this process; the upstream and a
keep-alive client in a child process, so ``time.process_time`` here is the gateway's alone.

    python -m bench.engine_loop compare       # pure tree vs build/mypyc, interleaved rounds
    python -m bench.engine_loop compare --against ../baseline --management
                                              # another checkout (an earlier commit) vs this
    python -m bench.engine_loop measure --tree build/mypyc --kind typical

``--management``: the worker serves the management port too, as worker 0 does in production
(it keeps the dashboard's live numbers: their per-second sampling is then measured too).

``compare`` runs each measurement in a fresh interpreter with ``--tree`` first on
``sys.path``: the repository (pure Python) or ``build/mypyc`` (``make mypyc``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
COMPILED = ROOT / "build" / "mypyc"
UPSTREAM_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nhello world\n"
)
BODY_LENGTH = 12


# -- the child: upstream and client, no gateway code ------------------------------------------
class _Upstream(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        heads = self._buffer.count(b"\r\n\r\n")
        if heads:
            self._buffer = self._buffer[self._buffer.rindex(b"\r\n\r\n") + 4 :]
            self._transport.write(UPSTREAM_RESPONSE * heads)


class _Client(asyncio.Protocol):
    """One keep-alive connection sending ``request`` again each time a response is in."""

    def __init__(self, request: bytes, counter: list[int], limit: int, done: asyncio.Event):
        self._request = request
        self._counter = counter
        self._limit = limit
        self._done = done
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0 or len(self._buffer) < end + 4 + BODY_LENGTH:
                return
            if not self._buffer.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected response: {self._buffer[:200]!r}")
            self._buffer = self._buffer[end + 4 + BODY_LENGTH :]
            self._counter[0] += 1
            if self._counter[0] >= self._limit:
                self._done.set()
                return
            self._transport.write(self._request)


async def _client_main(kind: str, requests: int, warmup: int, connections: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Upstream, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    gateway_port = int(await loop.run_in_executor(None, sys.stdin.readline))
    path = b"/svc99/x" if kind == "typical" else b"/x"
    request = b"GET " + path + b" HTTP/1.1\r\nHost: bench\r\nUser-Agent: engine-loop\r\n\r\n"
    for phase, limit in (("warm", warmup), ("run", requests)):
        counter = [0]
        done = asyncio.Event()
        print(f"start {phase}", flush=True)
        transports = [
            (
                await loop.create_connection(
                    partial(_Client, request, counter, limit, done), "127.0.0.1", gateway_port
                )
            )[0]
            for _ in range(connections)
        ]
        await done.wait()
        print(f"done {phase} {counter[0]}", flush=True)
        for transport in transports:
            transport.close()
        await asyncio.sleep(0.05)
    server.close()


# -- the parent: one gateway worker ------------------------------------------------------------
async def _measure(
    kind: str, requests: int, warmup: int, connections: int, management: bool = False
) -> dict[str, Any]:
    from bench.stack import minimal_routes, typical_routes
    from gateway.app import Gateway
    from gateway.engine import server as engine_server
    from gateway.plugins import Factories
    from gateway.process import tune_gc, with_document_settings
    from gateway.settings import load_settings

    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.engine_loop",
        "client",
        "--kind",
        kind,
        "-n",
        str(requests),
        "--warmup",
        str(warmup),
        "-c",
        str(connections),
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    upstream_port = int(await child.stdout.readline())
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "routes.yml"
        text = (
            minimal_routes(upstream_port)
            if kind == "minimal"
            else typical_routes(upstream_port, upstream_port)
        )
        config.write_text(text)
        found = Factories.builtin()
        settings = with_document_settings(
            load_settings(
                host="127.0.0.1", port=0, config=str(config), access_log=False, management_port=0
            ),
            found,
        )
        gateway = Gateway(settings, found)
        gateway.load()
        await gateway.start(management=management)
        tune_gc()
        child.stdin.write(f"{gateway.port}\n".encode())
        await child.stdin.drain()
        cpu = wall = 0.0
        counted = 0
        for _phase in ("warm", "run"):
            await child.stdout.readline()  # start
            cpu, wall = time.process_time(), time.perf_counter()
            line = await child.stdout.readline()  # done <phase> <n>
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            counted = int(line.split()[2])
        await child.wait()
        await gateway.stop()
    return {
        "kind": kind,
        "compiled": str(engine_server.__file__).endswith(".so"),
        "requests": counted,
        "cpu_us_per_request": cpu / counted * 1e6,
        "requests_per_s": counted / wall,
    }


def measure(
    tree: Path, kind: str, requests: int, warmup: int, connections: int, management: bool
) -> None:
    sys.path.insert(0, str(tree))
    import uvloop

    result = uvloop.run(_measure(kind, requests, warmup, connections, management))
    print(json.dumps(result))


def compare(
    kinds: list[str],
    rounds: int,
    requests: int,
    warmup: int,
    connections: int,
    against: Path | None = None,
    management: bool = False,
) -> None:
    """``against``: that checkout (pure Python) vs this one, instead of pure vs mypyc."""
    trees = {"pure": ROOT, "mypyc": COMPILED}
    if against is not None:
        trees = {"pure": against.resolve(), "mypyc": ROOT}
    elif not (COMPILED / "gateway" / "engine").exists():
        sys.exit(f"no {COMPILED}: build it with `make mypyc`")
    labels = {"pure": "baseline", "mypyc": "this"} if against is not None else {}
    samples: dict[tuple[str, str], list[float]] = {}
    for round_ in range(rounds):
        for kind in kinds:
            # Alternate which tree goes first, so a drift in the machine's load favours neither.
            order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for name in order:
                out = subprocess.run(
                    [
                        *(sys.executable, "-m", "bench.engine_loop", "measure"),
                        *("--tree", str(trees[name]), "--kind", kind, "-n", str(requests)),
                        *("--warmup", str(warmup), "-c", str(connections)),
                        *(("--management",) if management else ()),
                    ],
                    cwd=ROOT,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                result = json.loads(out.strip().splitlines()[-1])
                if against is None and result["compiled"] != (name == "mypyc"):
                    sys.exit(f"{name}: imported the wrong tree ({result})")
                samples.setdefault((kind, name), []).append(result["cpu_us_per_request"])
                print(
                    f"round {round_ + 1} {kind:8} {labels.get(name, name):8} "
                    f"{result['cpu_us_per_request']:6.1f} µs/req  "
                    f"{result['requests_per_s']:7.0f} req/s",
                    flush=True,
                )
    print()
    first, second = (labels["pure"], labels["mypyc"]) if labels else ("pure", "mypyc")
    print(f"| set-up | {first} µs/req | {second} µs/req | {second} ÷ {first} |")
    print("|---|---|---|---|")
    for kind in kinds:
        pure = statistics.median(samples[(kind, "pure")])
        compiled = statistics.median(samples[(kind, "mypyc")])
        print(f"| {kind} | {pure:.1f} | {compiled:.1f} | {compiled / pure:.2f}x |")


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.engine_loop")
    parser.add_argument("command", choices=["compare", "measure", "client"])
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--kind", choices=["minimal", "typical"], default="typical")
    parser.add_argument("--kinds", nargs="+", default=["minimal", "typical"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-n", "--requests", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("-c", "--connections", type=int, default=16)
    parser.add_argument("--against", type=Path, default=None, help="a baseline checkout")
    parser.add_argument("--management", action="store_true", help="serve the management port")
    args = parser.parse_args()
    if args.command == "client":
        import uvloop

        uvloop.run(_client_main(args.kind, args.requests, args.warmup, args.connections))
    elif args.command == "measure":
        measure(args.tree, args.kind, args.requests, args.warmup, args.connections, args.management)
    else:
        compare(
            args.kinds,
            args.rounds,
            args.requests,
            args.warmup,
            args.connections,
            args.against,
            args.management,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
