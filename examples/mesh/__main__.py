"""``make demo-mesh`` (``python -m examples.mesh``): a Consul agent (``-dev``, on free loopback
ports), an OTLP trace receiver that prints each trace as it arrives, and the demo mesh
(``cluster.MeshDemo``) on fixed ports. Ctrl-C stops everything.

The Consul binary is the one the tests pin (``make consul`` builds it once); the receiver is
the tests' too. Neither is something a real deployment would use: point the services at a real
collector with ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` and the receiver is not started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from examples.mesh.cluster import MeshDemo, Ports
from tests.support.consul import ConsulAgent, consul_binary
from tests.support.otlp import OtlpReceiver, ReceivedSpan

TRY = """
The demo mesh is running (logs in {logs}).
  gateway        http://127.0.0.1:{p.gateway}   (management :{p.gateway_management})
  orders         :{orders}   billing :{billing}
  legacy         app :{p.legacy_app}, sidecar :{p.legacy_sidecar}, outbound :{p.legacy_outbound}
  Consul         {consul}/ui/

Try:
  # gateway -> orders -> billing: one trace, printed below as it arrives
  curl -s http://127.0.0.1:{p.gateway}/orders/7 | python3 -m json.tool
  # the canary lane: orders canary, then billing canary (the lane travels in baggage)
  curl -s -H 'X-Beta: true' http://127.0.0.1:{p.gateway}/orders/7 | python3 -m json.tool
  # a client's own lane is not trusted at the edge: this is stable traffic
  curl -s -H 'baggage: lane=canary' http://127.0.0.1:{p.gateway}/orders/7
  # the legacy app through Consul and its sidecar; it calls billing via HTTP_PROXY
  curl -s http://127.0.0.1:{p.gateway}/legacy/invoice/7 | python3 -m json.tool
  # kill a billing instance: orders keeps answering (retry elsewhere, ejection)
  kill {stable_pid}
  for i in $(seq 10); do curl -s http://127.0.0.1:{p.gateway}/orders/$i; echo; done
  # kill them all: orders answers its fallback once billing's breaker opens
  kill {all_pids}
  for i in $(seq 6); do curl -s http://127.0.0.1:{p.gateway}/orders/$i; echo; done

Ctrl-C stops everything.
"""


def print_traces(spans: list[ReceivedSpan], seen: dict[str, float], now: float) -> None:
    """Each trace once, as an indented tree, a second after its root span arrived (the spans
    of the other services come on their own schedule)."""
    by_trace: dict[str, list[ReceivedSpan]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    for trace_id, members in by_trace.items():
        if trace_id not in seen:
            roots = [s for s in members if s.parent_span_id is None]
            if not roots:
                continue
            # The agent's checks of the legacy app go through its sidecar: not shown.
            health = roots[0].attributes.get("url.path") == "/health"
            seen[trace_id] = -1.0 if health else now + 1.0
        due = seen.get(trace_id)
        if due is None or due < 0 or now < due:
            continue
        seen[trace_id] = -1.0  # printed
        children: dict[str | None, list[ReceivedSpan]] = defaultdict(list)
        for span in sorted(members, key=_start):
            children[span.parent_span_id].append(span)
        print(f"trace {trace_id}:")
        _print_tree(children, None, 1)
        sys.stdout.flush()


def _start(span: ReceivedSpan) -> int:
    return span.start_ns


def _print_tree(
    children: dict[str | None, list[ReceivedSpan]], parent: str | None, depth: int
) -> None:
    for span in children.get(parent, []):
        ms = (span.end_ns - span.start_ns) / 1e6
        status = span.attributes.get("http.response.status_code", span.status_code)
        print(f"{'  ' * depth}{span.service}: {span.kind} {span.name} {status} {ms:.1f} ms")
        _print_tree(children, span.span_id, depth + 1)


async def main() -> int:
    try:
        binary = consul_binary(build=False)
    except (RuntimeError, OSError) as error:
        print(f"demo-mesh: no Consul binary ({error}); `make consul` builds it", file=sys.stderr)
        return 1
    logs = Path(tempfile.mkdtemp(prefix="meshgate-demo-mesh-"))
    consul = ConsulAgent(binary, log_dir=logs)
    await asyncio.to_thread(consul.start)
    external = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    receiver = None if external else await OtlpReceiver().start()
    traces_url = external or (receiver.traces_url if receiver is not None else None)
    demo = MeshDemo(consul.http_addr, logs, traces_url, Ports())
    try:
        await asyncio.to_thread(demo.start)
    except RuntimeError as error:
        print(f"demo-mesh: {error}", file=sys.stderr)
        consul.close()
        return 1
    ports = demo.ports
    pids = {name: child.process.pid for name, child in demo.children.items()}
    billing_pids = " ".join(str(pid) for name, pid in pids.items() if name.startswith("billing"))
    print(
        TRY.format(
            logs=logs,
            p=ports,
            orders=",".join(map(str, ports.orders)),
            billing=",".join(map(str, ports.billing)),
            consul=consul.url,
            stable_pid=pids["billing-stable-1"],
            all_pids=billing_pids,
        ),
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    seen: dict[str, float] = {}
    while not stop.is_set():
        if receiver is not None:
            print_traces(receiver.spans, seen, loop.time())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    print("stopping...", flush=True)
    await asyncio.to_thread(demo.stop)
    if receiver is not None:
        await receiver.stop()
    consul.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
