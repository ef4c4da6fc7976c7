"""The call path outside the gateway: a plain asyncio program using only ``discovery`` and
``resilience`` calls two real instances with retries, outlier ejection and a breaker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_plain_service_calls_through_the_mesh_client() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.eastwest.call_two_instances"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    # A separate process: nothing of the gateway was imported to make these calls.
    assert summary["gateway_imported"] is False
    # Instance b answers 500: every call still succeeds, from a, and b is ejected.
    assert summary["phase1_statuses"] == [200]
    assert summary["phase1_answered_by"] == ["a"]
    assert summary["ejected"] == ["b"]
    assert 1 <= summary["retries"] <= 3  # only until b was ejected
    # Both gone: three failures open the breaker, which then refuses without calling.
    assert summary["phase2_failed"] == 3
    assert summary["phase2_refused_by_breaker"] == 7
    assert summary["breaker"] == "open"
