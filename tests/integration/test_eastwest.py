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


def test_mesh_client_calls_by_service_name_without_the_gateway() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.eastwest.mesh_call"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    # discovery.mesh (client, middleware, registration helper) loads nothing of the gateway.
    assert summary["gateway_imported"] is False
    # Unlaned calls stay on stable; an inbound lane=canary reaches the canary, carried on.
    assert summary["plain_answered_by"] == ["stable"]
    assert summary["laned_answered_by"] == "canary"
    assert summary["laned_baggage"] == "lane=canary"
    assert summary["laned_trace_id"] == "0af7651916cd43dd8448eb211c80319c"


def test_importing_discovery_mesh_loads_no_gateway_module() -> None:
    code = (
        "import sys, discovery.mesh, discovery.mesh.registration\n"
        "print(sorted(m for m in sys.modules if m == 'gateway' or m.startswith('gateway.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
