"""Prometheus multiprocess mode for ``GATEWAY_WORKERS`` > 1: every worker's counters live in
files in one directory and the scraping worker sums them.

prometheus-client decides how to store values when it is first imported, from
``PROMETHEUS_MULTIPROC_DIR``; so the directory is prepared before anything imports it (the CLI
calls ``prepare`` before loading the server). Nothing here imports prometheus-client.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
# Each worker's live numbers (``live.publish``) beside prometheus-client's files.
LIVE_PREFIX = "live-"


def prepare() -> str:
    """Use ``PROMETHEUS_MULTIPROC_DIR`` when set (emptied of our files: stale ones from an
    earlier run, metrics and live numbers alike, would be summed in), else a fresh temporary
    directory. Returns the directory."""
    configured = os.environ.get(ENV)
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        stale_files = [
            *directory.glob("*.db"),
            *directory.glob(f"{LIVE_PREFIX}*.json"),
            *directory.glob(f"{LIVE_PREFIX}*.tmp"),
        ]
        for stale in stale_files:
            stale.unlink()
        return str(directory)
    directory_str = tempfile.mkdtemp(prefix="meshgate-metrics-")
    os.environ[ENV] = directory_str
    os.environ["MESHGATE_OWNS_METRICS_DIR"] = "1"
    return directory_str


def cleanup() -> None:
    """Remove the directory when this process created it."""
    if os.environ.pop("MESHGATE_OWNS_METRICS_DIR", None):
        shutil.rmtree(os.environ.get(ENV, ""), ignore_errors=True)


def worker_exited(pid: int) -> None:
    """A worker is gone: its live gauges (in-flight requests) stop counting, and its live
    numbers' file goes (what it counted stays in the management worker's rings)."""
    directory = os.environ.get(ENV)
    if directory:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
        with contextlib.suppress(OSError):
            (Path(directory) / f"{LIVE_PREFIX}{pid}.json").unlink()
