"""``make bench-profile``: where meshgate's time goes under load.

Starts the nginx upstream and one meshgate worker (the ``typical`` configuration), drives it
with wrk, and samples it with py-spy (a sampling profiler: no instrumentation overhead to
distort the picture). Prints the functions with the most own time and writes a flame graph.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench.stack import Stack, minimal_routes, typical_routes
from bench.wrk import run_wrk

RESULTS = Path(__file__).resolve().parent / "results"


def top_own_time(collapsed: str, limit: int) -> list[tuple[str, float]]:
    """From py-spy's collapsed stacks, the leaf frames with the largest share of samples."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        own[stack.split(";")[-1]] += samples
    return (
        [(frame, samples / total * 100) for frame, samples in own.most_common(limit)]
        if total
        else []
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.profile")
    parser.add_argument("--config", choices=("typical", "minimal"), default="typical")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="meshgate-profile-"))
    work.chmod(0o755)
    stack = Stack(work)
    try:
        upstream = stack.start_upstream()
        if args.config == "typical":
            routes, prefix = typical_routes(upstream.port, stack.upstream_port2), "/svc99"
        else:
            routes, prefix = minimal_routes(upstream.port), ""
        gateway = stack.start_meshgate(f"meshgate-{args.config}", routes, 1, prefix=prefix)
        run_wrk(gateway.base_url + "/", connections=50, duration_s=3)  # warm-up
        collapsed = work / "profile.txt"
        flame = RESULTS / f"profile-{args.config}.svg"
        RESULTS.mkdir(exist_ok=True)
        load = threading.Thread(
            target=run_wrk,
            args=(gateway.base_url + "/",),
            kwargs={"connections": 50, "duration_s": args.seconds + 2},
        )
        load.start()
        for fmt, out in (("raw", collapsed), ("flamegraph", flame)):
            subprocess.run(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(gateway.process.pid),
                    "--duration",
                    str(int(args.seconds / 2)),
                    "--rate",
                    "250",
                    "--format",
                    fmt,
                    "--output",
                    str(out),
                    "--nonblocking",
                ],
                check=True,
                capture_output=True,
            )
        load.join()
        print(f"own time, meshgate `{args.config}` under wrk c=50 (share of samples):")
        for frame, share in top_own_time(collapsed.read_text(), args.top):
            print(f"  {share:5.1f}%  {frame}")
        print(f"flame graph: {flame}")
    finally:
        stack.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
