"""CPU time and memory of a process tree, read from /proc (a gateway with workers is several
processes; nginx is a master and a worker)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that exist now."""
    out = [pid]
    i = 0
    while i < len(out):
        current = out[i]
        try:
            tasks = Path(f"/proc/{current}/task").iterdir()
            for task in tasks:
                text = (task / "children").read_text()
                out.extend(int(child) for child in text.split())
        except OSError:
            pass
        i += 1
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the given processes (their own, not reaped children's)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_bytes(pids: list[int]) -> int:
    return sum(_status_kib(pid, "VmRSS:") for pid in pids) * 1024


def peak_rss_bytes(pids: list[int]) -> int:
    """Sum of each process's high-water mark (VmHWM)."""
    return sum(_status_kib(pid, "VmHWM:") for pid in pids) * 1024


@dataclass
class CpuMeter:
    """CPU seconds used by a process tree between ``start`` and ``stop``."""

    root: int
    _start: float = 0.0

    def start(self) -> None:
        self._start = cpu_seconds(tree(self.root))

    def stop(self) -> float:
        return cpu_seconds(tree(self.root)) - self._start
