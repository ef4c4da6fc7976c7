# The report writes real multiplication signs, as bench/report.py does.
# ruff: noqa: RUF001
from __future__ import annotations

from typing import Any

from bench.report import markdown, security_lines


def _row(workload: str, candidate: str, rps: float, cpu: float | None) -> dict[str, Any]:
    return {
        "workload": workload,
        "candidate": candidate,
        "rps": rps,
        "rps_min": rps,
        "rps_max": rps,
        "p50_ms": 1.0,
        "p99_ms": 2.0,
        "cpu_us": cpu,
        "errors": 0,
    }


SUMMARY = [
    _row("small c=50", "nginx", 40000, 20.0),
    _row("small c=50", "meshgate-1w-minimal", 10000, 80.0),
    _row("small c=50", "meshgate-1w-typical", 8000, 100.0),
    _row("small c=50", "nginx-tls", 30000, 30.0),
    _row("small c=50", "meshgate-1w-minimal-tls", 8500, 95.0),
    _row("small c=50", "meshgate-1w-typical-jwt", 7600, 108.0),
    _row("small c=50 new-conn", "nginx", 20000, 40.0),
    _row("small c=50 new-conn", "meshgate-1w-minimal", 4000, 200.0),
    _row("small c=50 new-conn", "nginx-tls", 5000, 160.0),
    _row("small c=50 new-conn", "meshgate-1w-minimal-tls", 1000, 800.0),
    _row("64 KiB c=50", "nginx", 9000, 50.0),
]


def test_tls_ratios_per_workload_against_the_plain_self() -> None:
    lines = security_lines(SUMMARY)
    table = [line for line in lines if line.startswith("| ")]
    assert table[0] == "| TLS ÷ plain | small c=50 | small c=50 new-conn |"
    assert table[1] == (
        "| nginx-tls ÷ nginx | 0.75× (30000 ÷ 40000 req/s; CPU 1.50×) "
        "| 0.25× (5000 ÷ 20000 req/s; CPU 4.00×) |"
    )
    assert table[2].startswith("| meshgate-1w-minimal-tls ÷ meshgate-1w-minimal | 0.85× ")
    assert "≥ 0.80×" in lines[0]


def test_jwt_auth_is_priced_in_cpu_per_request_against_typical() -> None:
    jwt = next(line for line in security_lines(SUMMARY) if line.startswith("**JwtAuth**"))
    assert "108.0 CPU µs/req ÷ meshgate-1w-typical's 100.0: 1.08× (+8.0 %; target ≤ +10 %)" in jwt
    assert "req/s 0.95× (7600 ÷ 8000)" in jwt


def test_a_tls_candidate_without_its_plain_self_is_left_out() -> None:
    summary = [_row("small c=50", "nginx-tls", 1, 1.0), _row("small c=50", "direct", 2, None)]
    assert security_lines(summary) == []


def test_the_run_entry_carries_the_security_lines() -> None:
    result = {
        "started": "2026-12-03T10:00:00+00:00",
        "mode": "quick",
        "machine": {"cpus": 2, "python": "3.11.7"},
        "plan": {"rounds": 1, "duration_s": 3},
        "summary": SUMMARY,
        "peak_rss_bytes": {},
    }
    text = markdown(result, None)
    assert "**TLS termination**" in text and "**JwtAuth**" in text
    assert text.index("### 64 KiB c=50") < text.index("**TLS termination**")
