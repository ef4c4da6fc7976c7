"""A deterministic cost measure for the request path: Python function calls (and C calls made
from our code) per proxied request, counted with ``sys.setprofile`` over N in-process requests.

Unlike a timing, this does not depend on the machine or its load, so CI can hold a budget:
``tests/cost_budget.json`` records calls/request for the ``minimal`` and ``typical`` set-ups,
``test_cost_guard`` fails when a change raises either by more than 10 %, and
``python -m tests.support.cost --record`` writes a new budget after an intended change.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import textwrap
from pathlib import Path
from types import FrameType
from typing import Any

from bench.stack import minimal_routes, typical_routes
from tests.support.gateway import start_gateway

BUDGET_FILE = Path(__file__).resolve().parent.parent / "cost_budget.json"
ROOT = Path(__file__).resolve().parent.parent.parent
OURS = tuple(str(ROOT / package) for package in ("gateway", "discovery", "resilience"))
REQUESTS = 200
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nhello world\n"


def routes(kind: str, port: int) -> str:
    """The benchmark's own set-ups, so the guard counts what ``make bench`` measures (here
    both of ``typical``'s instances are the one in-process upstream)."""
    return minimal_routes(port) if kind == "minimal" else typical_routes(port, port)


class CallCounter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            if frame.f_code.co_filename.startswith(OURS):
                self.calls += 1
        elif event == "c_call" and frame.f_code.co_filename.startswith(OURS):
            self.calls += 1


async def _upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(RESPONSE)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def measure(kind: str, requests: int = REQUESTS) -> float:
    """Calls per request for ``kind`` (``minimal`` or ``typical``), keep-alive client."""
    server = await asyncio.start_server(_upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "routes.yml"
        config.write_text(textwrap.dedent(routes(kind, port)))
        gateway = await start_gateway(config)
        try:
            path = b"/svc99/x" if kind == "typical" else b"/x"
            request = b"GET " + path + b" HTTP/1.1\r\nHost: bench\r\nUser-Agent: cost\r\n\r\n"
            reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)

            async def one() -> None:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), head
                await reader.readexactly(12)

            for _ in range(20):  # warm-up: pools, caches, lazily built tables
                await one()
            counter = CallCounter()
            sys.setprofile(counter)
            try:
                for _ in range(requests):
                    await one()
            finally:
                sys.setprofile(None)
            writer.close()
        finally:
            await gateway.gateway.stop()
            server.close()
            await asyncio.sleep(0.05)  # let the upstream handlers see the pool's EOFs
    return counter.calls / requests


def load_budget() -> dict[str, float]:
    return dict(json.loads(BUDGET_FILE.read_text()))


def main() -> int:
    parser = argparse.ArgumentParser(prog="tests.support.cost")
    parser.add_argument("--record", action="store_true", help=f"write {BUDGET_FILE.name}")
    args = parser.parse_args()
    measured = {kind: round(asyncio.run(measure(kind)), 1) for kind in ("minimal", "typical")}
    print(json.dumps(measured))
    if args.record:
        BUDGET_FILE.write_text(json.dumps(measured, indent=2) + "\n")
        print(f"recorded {BUDGET_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
