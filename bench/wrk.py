"""Running wrk and reading its report: unit-tested, since every figure in RESULTS.md passes
through it."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_LATENCY = re.compile(r"^\s*(50|75|90|99(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_TOTAL = re.compile(
    r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),\s*([\d.]+)(B|KB|MB|GB)? read", re.M
)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.M)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)", re.M)


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    socket_errors: int
    non_2xx: int

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non_2xx


def _seconds(value: str, unit: str) -> float:
    return float(value) * _UNITS_S[unit]


def parse_wrk(output: str) -> WrkResult:
    """Parse ``wrk --latency`` output. Raises ValueError when a figure is missing, so a broken
    run never becomes a row of zeros."""
    total = _TOTAL.search(output)
    rps = _RPS.search(output)
    latencies = {m.group(1): _seconds(m.group(2), m.group(3)) for m in _LATENCY.finditer(output)}
    if total is None or rps is None or not {"50", "90", "99"} <= set(latencies):
        raise ValueError(f"not a wrk --latency report:\n{output[:500]}")
    errors = _ERRORS.search(output)
    non_2xx = _NON_2XX.search(output)
    return WrkResult(
        requests=int(total.group(1)),
        duration_s=_seconds(total.group(2), total.group(3)),
        rps=float(rps.group(1)),
        p50_ms=latencies["50"] * 1000,
        p90_ms=latencies["90"] * 1000,
        p99_ms=latencies["99"] * 1000,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def wrk_command(
    url: str,
    *,
    connections: int,
    duration_s: float,
    threads: int = 2,
    script: Path | None = None,
    headers: Mapping[str, str] | None = None,
) -> list[str]:
    """The wrk command line. ``headers`` go on every request (``-H``: wrk sets them before a
    ``script`` runs, so a script's own method and body combine with them)."""
    command = [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        "10s",
        "--latency",
    ]
    for name, value in (headers or {}).items():
        if not name or any(c in name for c in ": \r\n") or any(c in value for c in "\r\n\0"):
            raise ValueError(f"not a header wrk can send: {name!r}: {value!r}")
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    return command


def run_wrk(
    url: str,
    *,
    connections: int,
    duration_s: float,
    threads: int = 2,
    script: Path | None = None,
    headers: Mapping[str, str] | None = None,
) -> WrkResult:
    command = wrk_command(
        url,
        connections=connections,
        duration_s=duration_s,
        threads=threads,
        script=script,
        headers=headers,
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)
